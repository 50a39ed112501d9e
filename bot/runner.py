"""The bot once its settings and files are in order: database, Telegram, then long polling or
a webhook (bot.webhook), until a signal or a refused token ends it (see bot.app for what comes
before).

Telegram may be unreachable at start (a server up before its network): the bot waits for it
with back-off, a line per attempt. SIGTERM or SIGINT end it at any moment, within a couple of
seconds (up to bot.factory.SENDS_GRACE more while Telegram answers a send), with exit code 0;
aiogram's own signal handling is not used, as it waits for a hanging getUpdates to time out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aiogram.exceptions import (
    TelegramNotFound,
    TelegramUnauthorizedError,
)

from bot import logs
from bot.alerting.digest import Digests
from bot.alerting.monitoring import Monitor
from bot.alerting.outbox import Outbox
from bot.alerting.pacing import Pacer
from bot.alerting.scheduling import Checks
from bot.config import Settings, SettingsError
from bot.factory import SENDS_GRACE, create_bot, create_dispatcher, update_marks
from bot.ops.metrics import Metrics
from bot.ops.smsc_watch import CountingFetcher, ObservedGuard
from bot.smsc.client import SmscClient
from bot.smsc.kept import BOT_FILE, FILE_NAME, KeptGuardState
from bot.smsc.state import GuardState
from bot.storage.crypto import SecretBox, open_box
from bot.storage.direct import held
from bot.storage.engine import (
    create_engine,
    create_sessionmaker,
    migrate_apart,
)
from bot.storage.instance import single_instance
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from bot.telegram.sender import TelegramSender
from bot.waits import TELEGRAM_BACKOFF, until_answered, wait_for_database, wait_for_telegram
from bot.web import instrument, watched
from bot.webhook import Webhook

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# From a signal to the process's end: the shutdown hooks get this long, then are cancelled.
# The sends under way's grace and a webhook's updates under way (0.5 s) before it, with room
# to spare: closing what is left then still ends the process within Docker's 10 s.
SHUTDOWN_GRACE = SENDS_GRACE + 1.5
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Runner:
    """Runs the bot as a task that a signal, or a refused token, ends.

    A token Telegram refuses (401, or 404 for one it never knew) stops the bot with exit code
    1 and one line saying so: nothing can be sent or received with it, and retrying forever
    would hide that behind a process that looks alive. Unsent notifications stay in the
    outbox for the next start with the right token."""

    def __init__(self, settings: Settings, key: bytes | None) -> None:
        """`key`: SECRET_KEY's or the key file's, None without either (see open_box)."""
        self._settings = settings
        self._key = key
        self._task: asyncio.Task[None] | None = None
        # Set while updates are served: ends polling, or the webhook.
        self._stop_serving: Callable[[], Awaitable[None]] | None = None
        self._stopping = False
        self._refused: str | None = None
        self._lock_lost: str | None = None
        self._background: set[asyncio.Future[None]] = set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._serve(), name="bot")
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._stop, sig.name)
        try:
            await self._task
        except asyncio.CancelledError:
            if not self._stopping:
                raise
        except (TelegramUnauthorizedError, TelegramNotFound):
            pass  # at start-up: the session reported it (see _token_refused)
        finally:
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        if self._refused:
            raise SettingsError(
                f"BOT_TOKEN was refused by Telegram ({self._refused}): revoked or mistyped; "
                "set the current token from @BotFather"
            )
        if self._lock_lost:
            raise SettingsError(self._lock_lost)
        log.info("stopped")
        return 0

    def _stop(self, reason: str) -> None:
        assert self._task is not None
        if self._stopping:  # a second signal: no more waiting
            self._task.cancel()
            return
        log.info("stopping reason=%s", reason)
        self._stopping = True
        if self._stop_serving is None:
            self._task.cancel()
            return
        # Polling or the webhook stops, then the shutdown hooks run; they are bounded
        # (bot.factory), and should one hang anyway it is cancelled after SHUTDOWN_GRACE.
        stopping = asyncio.ensure_future(self._stop_serving())
        self._background.add(stopping)
        stopping.add_done_callback(self._background.discard)
        asyncio.get_running_loop().call_later(SHUTDOWN_GRACE + 0.3, self._task.cancel)

    def _token_refused(self, reason: str) -> None:
        """Called by the Telegram session on any request's 401/404. At start-up the error
        itself ends the start; while serving updates, serving stops."""
        if self._refused is None:
            self._refused = reason
            if self._stop_serving is not None:
                self._stop("token refused")

    def _lost_lock(self, why: str) -> None:
        """Called when another process took the database's lock while the server restarted
        (see single_instance): this one stops, exit code 1, rather than run beside it."""
        if self._lock_lost is None:
            self._lock_lost = why
            self._stop("database lock lost")

    async def _serve(self) -> None:
        settings = self._settings
        async with contextlib.AsyncExitStack() as resources:
            engine = create_engine(settings.database_url)
            resources.push_async_callback(engine.dispose)
            redis = None
            if settings.redis_url is not None:
                # The `redis` extra: imported with REDIS_URL only.
                from bot.fleet.connection import NOT_ANSWERING, answers, connect

                redis = connect(settings.redis_url.get_secret_value())
                resources.push_async_callback(redis.aclose)
                # As the database: waited for when down, a refused password ends the start.
                await until_answered("Redis", lambda: answers(redis), NOT_ANSWERING)
            if engine.dialect.name == "postgresql":
                await wait_for_database(engine)
            await resources.enter_async_context(
                single_instance(engine, fleet=redis is not None, on_lost=self._lost_lock)
            )
            await migrate_apart(engine)
            box = await open_box(engine, self._key, settings.data_dir)
            reader = await resources.enter_async_context(held(engine))
            smsc = SmscClient(proxy_url=settings.smsc_proxy_url)
            resources.push_async_callback(smsc.aclose)
            bot = create_bot(settings, on_token_refused=self._token_refused)
            resources.push_async_callback(bot.session.close)
            metrics = Metrics()
            shared = _shared_limits(redis, box, bot.id, settings.data_dir)
            guard = ObservedGuard(
                CountingFetcher(smsc, metrics),
                metrics=metrics,
                max_per_minute=settings.smsc_max_requests_per_minute,
                cache_seconds=settings.balance_cache_seconds,
                state=shared.guard_state,
            )
            sessionmaker = create_sessionmaker(engine)
            i18n = create_i18n()
            monitor = Monitor(TelegramRenderer(i18n))
            # SQLite has one writer: checks and the outbox take turns; PostgreSQL needs none.
            writes = asyncio.Lock() if engine.dialect.name == "sqlite" else None
            leases = {"lease_seconds": settings.lease_seconds, "writes": writes}
            # A third of the lease: the send ends, and its sent mark is written, before it runs out.
            sender = TelegramSender(bot, timeout=settings.lease_seconds / 3)
            outbox = Outbox(sender, sessionmaker, pacer=shared.pacer, **leases)
            checks = Checks(sessionmaker, guard, box, monitor, outbox, **leases, metrics=metrics)
            dp = create_dispatcher(
                settings=settings,
                engine=engine,
                sessionmaker=sessionmaker,
                smsc=smsc,
                guard=guard,
                box=box,
                i18n=i18n,
                monitor=monitor,
                outbox=outbox,
                checks=checks,
                digests=Digests(sessionmaker, TelegramRenderer(i18n), outbox),
                redis=redis,
                reader=reader,
            )
            log.info(
                "starting telegram_api=%s telegram_proxy=%s smsc=%s smsc_proxy=%s",
                logs.shown_url(str(settings.telegram_api_url)),
                logs.shown_url(settings.telegram_proxy_url),
                settings.smsc_base_url,
                logs.shown_url(settings.smsc_proxy_url),
            )
            webhook = None
            if settings.webhook_url is not None:
                webhook = Webhook(settings, dp, bot, marks=update_marks(redis, bot.id))
            health = instrument(dp, bot, metrics, webhook.watch if webhook else None)
            await resources.enter_async_context(
                watched(settings, health, metrics, sessionmaker, webhook.route if webhook else None)
            )
            if webhook is not None:
                await wait_for_telegram(bot, i18n, webhook.register)
                # No await between these two: a signal sees serving either not begun or begun.
                self._stop_serving = webhook.stop
                await webhook.serve()
                return
            # Telegram refuses getUpdates while a webhook is set: one left by webhook mode goes,
            # the updates it holds stay for polling.
            await wait_for_telegram(
                bot, i18n, lambda: bot.delete_webhook(drop_pending_updates=False)
            )
            self._stop_serving = dp.stop_polling
            await dp.start_polling(
                bot,
                allowed_updates=dp.resolve_used_update_types(),
                handle_signals=False,
                close_bot_session=False,  # closed with the other resources, on every path
                backoff_config=TELEGRAM_BACKOFF,
            )


@dataclass(frozen=True)
class _Shared:
    guard_state: GuardState
    pacer: Pacer | None = None  # None: in this process only


def _shared_limits(redis: Redis | None, box: SecretBox, bot_id: int, data_dir: Path) -> _Shared:
    """With Redis, the SMSC guard's limits and Telegram's pacing hold for every replica
    together; its keys are named by a key every replica derives from SECRET_KEY. Without, the
    guard's memory keeps SMSC's refusals and IP blocks in the data folder, for the next start
    (bot.smsc.kept)."""
    if redis is None:
        state = KeptGuardState(
            data_dir / BOT_FILE,
            theirs=data_dir / FILE_NAME,  # python -m bot check's, as they were at the start
            unwritten=lambda why: log.warning("%s", why),
        )
        return _Shared(state)
    from bot.fleet.limits import fleet_guard_state
    from bot.fleet.pacing import RedisPacer

    return _Shared(fleet_guard_state(redis, box), RedisPacer(redis, bot_id=bot_id))
