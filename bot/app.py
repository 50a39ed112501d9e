"""The running bot: settings, database, SMSC guard, then long polling until a signal."""

from __future__ import annotations

import asyncio
import logging

from bot.config import configure_logging, load_settings
from bot.crypto import SecretBox, load_or_create_key
from bot.digest import Digests
from bot.factory import create_bot, create_dispatcher
from bot.guard import BalanceGuard
from bot.i18n import create_i18n
from bot.monitoring import Monitor
from bot.notifications import Outbox
from bot.scheduling import Checks
from bot.smsc import SmscClient
from bot.storage import create_engine, create_sessionmaker, migrate

log = logging.getLogger(__name__)


async def run() -> int:
    settings = load_settings()
    configure_logging(settings.log_level)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    box = SecretBox(load_or_create_key(secret_key, settings.data_dir))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = create_engine(settings.database_url)
    await migrate(engine)
    smsc = SmscClient()
    guard = BalanceGuard(
        smsc,
        max_per_minute=settings.smsc_max_requests_per_minute,
        cache_seconds=settings.balance_cache_seconds,
    )
    bot = create_bot(settings)
    sessionmaker = create_sessionmaker(engine)
    i18n = create_i18n()
    monitor = Monitor(i18n)
    writes = asyncio.Lock()  # checks and the outbox take turns writing SQLite
    outbox = Outbox(bot, sessionmaker, writes=writes)
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
        checks=Checks(sessionmaker, guard, box, monitor, outbox, writes=writes),
        digests=Digests(sessionmaker, i18n, outbox),
    )
    log.info("starting telegram_api=%s smsc=%s", settings.telegram_api_url, settings.smsc_base_url)
    await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types())
    log.info("stopped")
    return 0
