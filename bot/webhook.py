"""Webhook mode (WEBHOOK_URL set): Telegram POSTs each update to WEBHOOK_URL, which a reverse
proxy passes to the bot's own HTTP server (bot.web) at the same path; aiogram's aiohttp
integration feeds it to the dispatcher. There is no getUpdates.

The dispatcher's startup and shutdown hooks run as they do around polling. Until the first
have run, and from a stop on, an update is answered 503: Telegram delivers it again later, or
to another replica behind the load balancer, so none is lost and none meets a bot half started
or half stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Update
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot import logs
from bot.config import Settings, SettingsError
from bot.fleet.updates import MarksUnavailable, Seen, UpdateMarks
from bot.telegram.handlers.errors import StateUnavailable
from bot.telegram.observe import WebhookWatch
from bot.web import Route

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# getWebhookInfo this often, or twice per HEALTH_TELEGRAM_SECONDS if that is shorter: its
# answers are what keeps "telegram" healthy when no update comes.
WEBHOOK_INFO_EVERY = 60.0
# At a stop, updates under way get this long before the shutdown hooks run; any still under
# way after that is cut with the HTTP server (bot.web), unanswered, and Telegram redelivers it.
UNDER_WAY_GRACE = 0.5
AGAIN = "Not handled: Telegram delivers it again"


def told_already(record: logging.LogRecord) -> bool:
    """For aiogram's "aiogram.event" logger: false for its traceback of an update Redis could
    not serve, which the error handler told in one line, and which is answered 503 (every
    update of a Redis outage would be a traceback)."""
    return not logs.raised(record, StateUnavailable)


class Receiver(SimpleRequestHandler):
    """aiogram's request handler for one bot: 401 to a request without the secret token (the
    dispatcher never sees it), 503 while not `accepting`, 400 to a body that is no update.

    With `marks` (several replicas: bot.fleet.update_marks), an update delivered again is
    handled once: answered 200 once handled, 503 while another delivery of it is under way (if
    that one fails, the next delivery is handled). A single process keeps none: marks in its
    memory would not outlive the restart after which Telegram mostly delivers again."""

    def __init__(
        self,
        dp: Dispatcher,
        bot: Bot,
        secret: str,
        on_update: Callable[[], None],
        marks: UpdateMarks | None = None,
    ) -> None:
        # `handle` is the receiver's own (aiogram's handler gives it the response writer).
        super().__init__(dp, bot)
        self._secret = secret.encode()
        self.accepting = False
        self._on_update = on_update
        self._marks = marks
        self._under_way = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def verify_secret(self, telegram_secret_token: str, bot: Bot) -> bool:
        # As bytes: compare_digest refuses text with non-ASCII characters, and anyone sending
        # one got a 500 and a traceback in the log where a wrong secret gets 401.
        given = telegram_secret_token.encode("utf-8", "surrogateescape")
        return secrets.compare_digest(given, self._secret)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.verify_secret(request.headers.get(SECRET_HEADER, ""), self.bot):
            return web.Response(status=401, text="Unauthorized")
        if not self.accepting:
            return web.Response(status=503, text="Starting or stopping")
        try:
            raw = self.bot.session.json_loads(await request.read())
            update = Update.model_validate(raw, context={"bot": self.bot})
        except (ValueError, RecursionError) as error:  # JSON, UTF-8 and validation errors
            # The error's type only: its text may quote the body, a password a user typed.
            log.warning("webhook body refused: not an update error=%s", type(error).__name__)
            return web.Response(status=400, text="Not an update")
        self._on_update()
        self._under_way += 1
        self._idle.clear()
        try:
            return await self._once(update)
        finally:
            self._under_way -= 1
            if not self._under_way:
                self._idle.set()

    async def _once(self, update: Update) -> web.Response:
        number = update.update_id
        if self._marks is not None:
            try:
                seen = await self._marks.take(number)
            except MarksUnavailable as error:  # as for the dialogs (bot.factory.dialog_storage)
                log.warning("update not handled update_id=%d: redis unreachable: %s", number, error)
                return web.Response(status=503, text=AGAIN)
            if seen is Seen.DONE:
                log.info("update handled already update_id=%d", number)
                return web.json_response({})
            if seen is Seen.UNDER_WAY:
                log.info("update under way elsewhere update_id=%d", number)
                return web.Response(status=503, text="Under way: Telegram delivers it again")
        # Handled before Telegram gets its answer, not in the background: Telegram forgets an
        # update once answered 2xx, so a replica killed or stopped in the middle of one must
        # not have answered yet; Telegram then delivers it again. The cost is a connection held
        # while a handler waits (for SMSC, say); aiogram answers anyway after 55 s, before
        # Telegram gives up, and finishes the handler in the background.
        try:
            result = await self.dispatcher.feed_webhook_update(self.bot, update, **self.data)
        except BaseException as error:
            await self._mark(number, handled=False)
            if isinstance(error, StateUnavailable):  # logged by the error handler
                return web.Response(status=503, text=AGAIN)
            raise
        await self._mark(number, handled=True)
        return web.Response(body=self._build_response_writer(bot=self.bot, result=result))

    async def _mark(self, number: int, *, handled: bool) -> None:
        if self._marks is None:
            return
        try:
            await (self._marks.done if handled else self._marks.drop)(number)
        except MarksUnavailable as error:
            # Its "under way" mark runs out by itself; until then a delivery is answered 503.
            log.warning("update mark not written update_id=%d error=%s", number, error)

    async def finish(self, grace: float) -> None:
        """Wait up to `grace` seconds for the updates under way."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), grace)


class Webhook:
    """setWebhook (`register`), then the dispatcher serving updates until `stop`."""

    def __init__(
        self, settings: Settings, dp: Dispatcher, bot: Bot, marks: UpdateMarks | None = None
    ) -> None:
        assert settings.webhook_url is not None and settings.webhook_secret is not None
        self.url = str(settings.webhook_url)
        self._secret = settings.webhook_secret.get_secret_value()
        self._dp, self._bot = dp, bot
        every = min(WEBHOOK_INFO_EVERY, settings.health_telegram_seconds / 2)
        self.watch = WebhookWatch(self.url, every)
        self.receiver = Receiver(dp, bot, self._secret, on_update=self.watch.delivered, marks=marks)
        self.route: Route = (settings.webhook_url.path or "/", self.receiver.handle)
        self._stopped = asyncio.Event()

    async def register(self) -> None:
        """One setWebhook (bot.waits.wait_for_telegram retries what may pass). A URL Telegram
        refuses is a bad setting: retrying would not change its answer."""
        try:
            await self._bot.set_webhook(
                self.url,
                secret_token=self._secret,
                allowed_updates=self._dp.resolve_used_update_types(),
            )
        except TelegramBadRequest as error:
            raise SettingsError(f"WEBHOOK_URL was refused by Telegram ({error.message})") from None

    async def serve(self) -> None:
        dp, bot = self._dp, self._bot
        data = {"dispatcher": dp, "bots": [bot], **dp.workflow_data}
        await dp.emit_startup(bot=bot, **data)
        watching = asyncio.create_task(self.watch.run(bot), name="webhook-info")
        self.receiver.accepting = True
        log.info("webhook serving path=%s", self.route[0])
        try:
            await self._stopped.wait()
        finally:
            self.receiver.accepting = False
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
            # The shutdown hooks end what handlers use (the outbox, the FSM storage).
            await self.receiver.finish(UNDER_WAY_GRACE)
            await dp.emit_shutdown(bot=bot, **data)

    async def stop(self) -> None:
        self._stopped.set()
