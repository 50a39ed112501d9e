"""The running bot: settings, then files, then bot.runner (database, Telegram, polling).

Everything that can be refused is checked before anything is written: a start that fails on
settings leaves no empty database and no new key behind. Settings are read before aiogram and
the rest are imported, so a bad one is told in a moment, not after seconds of imports.
"""

from __future__ import annotations

import gc
import logging
import signal

from bot import logs
from bot.config import configure_logging, load_settings
from bot.storage.crypto import load_key
from bot.storage.sqlite import create_database_file, prepare_data_dir


async def run() -> int:
    logs.install()
    settings = load_settings()
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    logs.remember(*settings.secrets())
    configure_logging(settings.log_level, settings.log_format)
    # aiogram logs each failed getUpdates, then a second line about its back-off: one is enough.
    logging.getLogger("aiogram.dispatcher").addFilter(
        lambda record: not record.getMessage().startswith("Sleep for ")
    )
    # Files only now, settings all valid: the folder and the database in it. A stop signal
    # waits until they are written. A key is made only once the database is seen to hold no
    # secret (bot.storage.crypto.open_box), by the runner.
    stops = {signal.SIGTERM, signal.SIGINT}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        prepare_data_dir(settings.data_dir)
        key = load_key(secret_key, settings.data_dir)
        create_database_file(settings.database_url)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    # The heavy imports (aiogram...), once settings are good; aiogram's models built as used.
    from bot.telegram.lazy_models import import_aiogram

    import_aiogram()
    from bot.runner import Runner
    from bot.webhook import told_already

    # aiogram logs with a traceback each update whose handling raised: not those told already.
    logging.getLogger("aiogram.event").addFilter(told_already)

    try:
        return await Runner(settings, key).run()
    finally:
        # The interpreter's final collection would walk the million objects aiogram and
        # pydantic made, for seconds on a busy machine, after SIGTERM was already answered.
        gc.freeze()
