"""Telegram watched from outside the modules doing the work: a Bot API request middleware and
a dispatcher middleware. They count into `Metrics` and keep what /healthz needs, with no hook
in the code they watch (SMSC's side: bot.ops.smsc_watch). In webhook mode, where there is no
getUpdates to watch, a light getWebhookInfo now and then (WebhookWatch) takes its place."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, WebhookInfo

from bot.ops.metrics import Metrics
from bot.telegram.middlewares import Handler

# aiogram keeps the class of a Bot API error, not its status: the class stands for the code.
_ERROR_CODES: list[tuple[type[Exception], str]] = [
    (TelegramRetryAfter, "429"),
    (TelegramMigrateToChat, "400"),
    (TelegramBadRequest, "400"),
    (TelegramUnauthorizedError, "401"),
    (TelegramForbiddenError, "403"),
    (TelegramNotFound, "404"),
    (TelegramConflictError, "409"),
    (TelegramEntityTooLarge, "413"),
    (TelegramServerError, "5xx"),
    (TelegramNetworkError, "network"),
]


# Failures that are no answer of the Bot API: its front servers or the network failed.
UNANSWERED = frozenset({"5xx", "network"})


def telegram_error_code(error: Exception) -> str:
    return next((code for cls, code in _ERROR_CODES if isinstance(error, cls)), "other")


class TelegramWatch(BaseRequestMiddleware):
    """Counts failed Bot API calls and tells how long polling has gone unanswered; in webhook
    mode (`webhook=True`), how long the Bot API has answered nothing at all."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        webhook: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._webhook = webhook
        self._answered_at = clock()  # the start counts as an answer: no alarm before polling
        self._last_poll_ok = True
        self._poll_started: float | None = None
        self._poll_timeout = 0.0

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        polling = isinstance(method, GetUpdates)
        if polling:
            self._poll_started, self._poll_timeout = self._clock(), float(method.timeout or 0)
        try:
            response = await make_request(bot, method)
        except TelegramAPIError as error:
            code = telegram_error_code(error)
            self._metrics.telegram_failed(type(method).__name__, code, error.message)
            if polling:
                self._last_poll_ok = False
            elif self._webhook and code not in UNANSWERED:
                self._answered_at = self._clock()  # refused, but answered
            raise
        finally:
            if polling:
                self._poll_started = None
        if polling:
            self._answered_at, self._last_poll_ok = self._clock(), True
        elif self._webhook:
            self._answered_at = self._clock()
        return response

    def silence(self) -> float:
        """Seconds the Bot API has owed an answer to getUpdates (webhook mode: to anything).
        A long poll is owed one only after its timeout; one that follows a failure proves
        nothing until it returns."""
        now = self._clock()
        silent = now - self._answered_at
        if self._poll_started is not None and self._last_poll_ok:
            silent = min(silent, max(0.0, now - self._poll_started - self._poll_timeout))
        return silent


class UpdateTimer(BaseMiddleware):
    """Times the handling of each update (a dispatcher outer middleware)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        with self._metrics.update_seconds.time():
            return await handler(event, data)


class WebhookWatch:
    """Webhook mode: asks getWebhookInfo every `every` seconds. Each answer keeps "telegram"
    health fresh (TelegramWatch, webhook=True), and tells whether Telegram can deliver updates
    to WEBHOOK_URL, which no replica can see for itself."""

    def __init__(self, url: str, every: float) -> None:
        self._url = url
        self._every = every
        self._info: WebhookInfo | None = None
        self._delivered_since_info = False

    async def run(self, bot: Bot) -> None:
        while True:
            # A failure is counted by TelegramWatch, and the silence is what health reports.
            with contextlib.suppress(TelegramAPIError):
                self._info = await bot.get_webhook_info()
                self._delivered_since_info = False
            await asyncio.sleep(self._every)

    def delivered(self) -> None:
        """An update reached this replica: what getWebhookInfo said before is out of date."""
        self._delivered_since_info = True

    def problem(self, now: datetime, within: float) -> str | None:
        """What stops updates reaching the bot, as getWebhookInfo told it last; None if
        nothing. A delivery error counts while it is less than `within` seconds old and
        updates wait: an error followed by deliveries (a replica restarted meanwhile) is
        over, though Telegram keeps reporting it."""
        info = self._info
        if info is None:
            return None
        if info.url != self._url:
            # deleteWebhook or setWebhook by another process with this token: a bot started
            # in polling mode, or another deployment.
            return "webhook: Telegram has another URL or none; was this token used elsewhere?"
        if info.last_error_date is None or not info.pending_update_count:
            return None
        if self._delivered_since_info:
            # Updates arrive again (the error was a replica starting, say): the waiting ones
            # told of are coming, until the next answer says otherwise.
            return None
        # Telegram's clock against ours: fine to a second or so, against `within` of minutes.
        age = (now - info.last_error_date).total_seconds()
        if age > within:
            return None
        return (
            f"webhook: Telegram cannot deliver updates ({info.last_error_message}), "
            f"{info.pending_update_count} waiting"
        )
