"""Factories: build the Bot and the Dispatcher with everything they depend on."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, StorageKey
from aiogram.fsm.storage.memory import DisabledEventIsolation, MemoryStorage
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import logs
from bot.alerting.digest import Digests
from bot.alerting.escalation import EscalationStore
from bot.alerting.monitoring import Monitor
from bot.alerting.outbox import Outbox
from bot.alerting.scheduling import Checks
from bot.config import Settings
from bot.smsc.client import SmscClient
from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from bot.storage.direct import Direct
from bot.storage.history import thin_all
from bot.telegram.admins import AdminRights
from bot.telegram.escalation import Escalations
from bot.telegram.handlers import create_router
from bot.telegram.handlers.errors import StateUnavailable
from bot.telegram.handlers.history import history_budget
from bot.telegram.i18n import ChatLanguageMiddleware
from bot.telegram.middlewares import ChatMiddleware, DbSessionMiddleware
from bot.telegram.session import TelegramSession

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.fleet.updates import UpdateMarks

log = logging.getLogger(__name__)

# At shutdown, checks under way get this long to finish and commit: a signal ends the process
# within a couple of seconds, whatever SMSC does.
SHUTDOWN_STEP_TIMEOUT = 0.5
# Meanwhile the sends Telegram is answering get this long to be answered and recorded: one
# cut short may have reached the chat, and would go again at the next start. aiogram's session
# gives a request 60 s (its default; the bot sets none), past Docker's 10 s before SIGKILL, so
# no stop can wait that out; Telegram answers in under a second, in a few under load or through
# a proxy: 5 s covers that, and leaves half of Docker's 10 s to the rest of the stop (the
# webhook's updates, closing the sessions and the database: bot.runner.SHUTDOWN_GRACE).
# Nothing under way, the stop does not wait.
SENDS_GRACE = 5.0


def create_bot(settings: Settings, on_token_refused: Callable[[str], None] | None = None) -> Bot:
    session = TelegramSession(
        api=TelegramAPIServer.from_base(str(settings.telegram_api_url)),
        proxy=settings.telegram_proxy_url,
        on_token_refused=on_token_refused,
    )
    return Bot(
        settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def create_dispatcher(
    *,
    settings: Settings,
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    smsc: SmscClient,
    guard: BalanceGuard,
    box: SecretBox,
    i18n: I18n,
    monitor: Monitor,
    outbox: Outbox,
    checks: Checks,
    digests: Digests,
    redis: Redis | None = None,
    reader: Direct | None = None,
) -> Dispatcher:
    """Everything handlers and hooks need goes in as workflow data: no module globals.
    `reader`: a held connection (bot.storage.direct) for the chat each update reads."""
    storage, isolation = dialog_storage(redis)
    dp = Dispatcher(
        storage=storage,
        events_isolation=isolation,
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
        digests=digests,
        scheduler=create_scheduler(),
        admin_rights=AdminRights(),
        history_budget=history_budget(),
        redis=redis,  # for /healthz; None on one process
        reader=reader,
    )
    dp.update.outer_middleware(DbSessionMiddleware())
    dp.update.outer_middleware(ChatMiddleware())
    ChatLanguageMiddleware(i18n).setup(dp)
    dp.include_router(create_router())
    dp.startup.register(on_startup)
    dp.shutdown.register(on_shutdown)
    return dp


def dialog_storage(redis: Redis | None) -> tuple[BaseStorage, BaseEventIsolation]:
    """Dialog state and the one-update-at-a-time of a chat: in the process, or, with Redis,
    for all replicas together (a dialog goes on whichever replica gets its next message)."""
    if redis is None:
        return MemoryStorage(), DisabledEventIsolation()
    # Imported here: aiogram's Redis storage imports redis, an extra needed with REDIS_URL only.
    from aiogram.fsm.storage.redis import DefaultKeyBuilder, RedisEventIsolation, RedisStorage
    from redis.asyncio.lock import Lock
    from redis.exceptions import AuthenticationError, ConnectionError, LockError, TimeoutError

    # Only what comes before an update is acted on (the chat's turn, its dialog read) fails it
    # as StateUnavailable, answered 503 for Telegram to deliver again: a failure after (the
    # dialog's next step written, the turn given back) would have the update handled twice.
    @contextlib.asynccontextmanager
    async def reached() -> AsyncIterator[None]:
        try:
            yield
        except AuthenticationError as error:  # a ConnectionError too, to redis-py
            # A password changed while the replicas run: a setting to fix, not an outage.
            raise StateUnavailable(f"redis refused the password: {type(error).__name__}") from None
        except (ConnectionError, TimeoutError) as error:
            raise StateUnavailable(f"redis unreachable: {type(error).__name__}") from None

    class SharedRedisStorage(RedisStorage):
        async def get_state(self, *args: Any, **kwargs: Any) -> str | None:
            async with reached():
                return await super().get_state(*args, **kwargs)

        async def get_data(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            async with reached():
                return await super().get_data(*args, **kwargs)

        async def close(self) -> None:
            """Not here: aiogram closes the storage before the shutdown hooks, which may still
            use the client (bot.fleet); the wiring closes it after them."""

    class SharedRedisIsolation(RedisEventIsolation):
        @contextlib.asynccontextmanager
        async def lock(self, key: StorageKey) -> AsyncIterator[None]:
            turn = self.redis.lock(
                name=self.key_builder.build(key, "lock"), **self.lock_kwargs, lock_class=Lock
            )
            async with reached():
                await turn.acquire()
            try:
                yield
            finally:
                try:
                    await turn.release()
                except (ConnectionError, TimeoutError, LockError) as error:
                    # The update was handled; the turn runs out by itself (its timeout).
                    log.warning("chat turn not given back error=%s", type(error).__name__)

    keys = DefaultKeyBuilder(prefix="smscbot:fsm", with_bot_id=True)
    # The chat's lock lasts aiogram's default minute: it must outlive the slowest handler
    # (SMSC's timeouts), or another replica would take the chat's next update meanwhile; a
    # replica that dies holding it delays that chat by as much.
    return (
        SharedRedisStorage(redis, key_builder=keys),
        SharedRedisIsolation(redis, key_builder=keys),
    )


def update_marks(redis: Redis | None, bot_id: int) -> UpdateMarks | None:
    """With Redis (replicas), an update Telegram delivers again, to any of them, is handled
    once (bot.webhook)."""
    if redis is None:
        return None
    # Imported here: the `redis` extra, needed with REDIS_URL only.
    from bot.fleet.update_marks import RedisUpdateMarks

    return RedisUpdateMarks(redis, bot_id=bot_id)


class _CancelledAtShutdown(logging.Filter):
    """APScheduler cancels the jobs under way at `shutdown(wait=False)` and logs each as a job
    that raised, with a traceback: a job stopped with the bot is no error (a minute's job runs
    again at the next start)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not logs.raised(record, asyncio.CancelledError)


def create_scheduler() -> AsyncIOScheduler:
    """In-memory jobs, rebuilt from our tables at every start; start it inside the running
    loop. (APScheduler's SQLAlchemy job store is synchronous and pickles jobs.)"""
    executors = logging.getLogger("apscheduler.executors.default")
    if not any(isinstance(f, _CancelledAtShutdown) for f in executors.filters):
        executors.addFilter(_CancelledAtShutdown())
    return AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
    )


async def on_startup(
    checks: Checks,
    digests: Digests,
    outbox: Outbox,
    scheduler: AsyncIOScheduler,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    bot: Bot,
    i18n: I18n,
) -> None:
    # The command menus are already set: bot.app waits for Telegram before polling.
    await checks.prepare()
    digests.schedule(scheduler)
    Escalations(EscalationStore(sessionmaker), bot, i18n, outbox).schedule(scheduler)
    scheduler.add_job(
        thin_all,
        CronTrigger(hour=3, minute=17, timezone=UTC),
        args=[sessionmaker, settings.history_raw_days],
        id="thin-history",
    )
    scheduler.start()  # inside the running loop, which AsyncIOScheduler binds to
    checks.start()
    outbox.start()
    # Hundreds of thousands of objects from imports live as long as the bot: out of the
    # collector's sight, full collections no longer stop the event loop for a quarter second.
    gc.freeze()


async def on_shutdown(scheduler: AsyncIOScheduler, checks: Checks, outbox: Outbox) -> None:
    # Checks under way finish and commit, unless SMSC is slow; sends under way, unless
    # Telegram is; unsent notifications stay in the outbox. Both at once, so that the outbox
    # claims nothing more from the start. The SMSC client, the engine and the Bot's session
    # are closed by bot.runner.
    scheduler.shutdown(wait=False)
    checks.stop()
    await asyncio.gather(_drain(checks), outbox.stop(grace=SENDS_GRACE))


async def _drain(checks: Checks) -> None:
    try:
        await asyncio.wait_for(checks.drain(), SHUTDOWN_STEP_TIMEOUT)
    except TimeoutError:
        log.info("shutdown: checks under way cancelled; they run again at the next start")
