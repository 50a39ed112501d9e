"""Entry point: `python -m bot` runs the bot; `python -m bot check` tests SMSC credentials;
`python -m bot backup <file>` copies the database; `python -m bot copy-data --to URL` moves its
data into a new database (PostgreSQL, for several replicas); `python -m bot health` asks the
running bot's /healthz."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import NoReturn

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
USAGE_ERROR = 64


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    # Not SystemExit: raised where Python ignores exceptions (an import lock's callback, a
    # finalizer), it was printed and the start went on. Nothing is open yet to be closed, and
    # the files written at start hold signals off until they are whole (bot.app).
    os._exit(0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # 64 (sysexits' EX_USAGE), not argparse's 2: to a script, `check`'s 2 is "wrong password".
        self.print_usage(sys.stderr)
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m bot", description=__doc__)
    commands = parser.add_subparsers(dest="command")
    check = commands.add_parser(
        "check",
        help="print an account's balance (password from SMSC_PASSWORD or a prompt)",
        description="Checks SMSC credentials and connectivity without Telegram. Exit codes: "
        "0 ok, 2 wrong login/password, 3 IP blocked, 4 rate limited, 5 SMSC unreachable, "
        "6 unexpected answer, 7 not sent to SMSC for now (its limits); 1 a bad setting or input, "
        "64 a bad command line.",
    )
    check.add_argument("--login", required=True)
    check.add_argument("--site", help="smsc.ru, smsc.kz, ... or a base URL (default SMSC_BASE_URL)")
    backup = commands.add_parser(
        "backup",
        help="copy the SQLite database to a file, also while the bot runs",
        description="Writes a consistent copy of the database (DATABASE_URL) to FILE, readable "
        "by its owner only. Keep secret.key (or SECRET_KEY) with it.",
    )
    backup.add_argument("file", type=Path)
    transfer = commands.add_parser(
        "copy-data",
        help="copy all data into a new, empty database (e.g. PostgreSQL for several replicas)",
        description="Stop the bot first: refused while it runs. Copies the chats, accounts "
        "(their SMSC secrets still encrypted with the bot's key), balance history, "
        "notifications and hand-offs of DATABASE_URL into the database at URL, which is "
        "migrated first and must hold no data.",
    )
    transfer.add_argument(
        "--to", required=True, metavar="URL", help="e.g. postgresql+asyncpg://bot:PASSWORD@db/bot"
    )
    migration = commands.add_parser(
        "migrate",
        help="bring the database schema to this version's (the bot also does it at start)",
        description="Applies the schema migrations DATABASE_URL's database lacks, then exits.",
    )
    migration.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    commands.add_parser(
        "health",
        help="ask the running bot's /healthz (HTTP_PORT): one line, exit code 0 when healthy",
        description="For a container's health check or a script: prints 'healthy', or "
        "'unhealthy:' and the problems the bot reports, or why it did not answer; exit code 0 "
        "when healthy, 1 otherwise.",
    )
    args = parser.parse_args(argv)
    if args.command is None:
        # Stopped while starting (imports take seconds): a clean exit, not the death by
        # SIGTERM or the KeyboardInterrupt traceback of the defaults. The bot's loop installs
        # handlers of its own once it runs; bot.app holds these off while it writes files.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stopped)
        from bot import memory

        memory.limit_arenas()  # before the first thread
        memory.trim_after_collections()
        memory.collect_less_often()
    from bot.config import SettingsError  # after the handlers: it imports pydantic & co.

    try:
        if args.command == "check":
            from bot.cli import check_balance

            return asyncio.run(check_balance(args.login, args.site))
        if args.command == "backup":
            from bot.storage.backup import BackupError, copy_database

            try:
                print(copy_database(args.file))
            except BackupError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            return 0
        if args.command == "copy-data":
            from bot.storage.transfer import TransferError, copy_data

            try:
                print(asyncio.run(copy_data(args.to)))
            except TransferError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            return 0
        if args.command == "health":
            from bot.ops.probe import probe

            return probe()
        if args.command == "migrate":
            from bot.config import load_settings
            from bot.config.sections import SQLITE_PREFIX, DatabaseSettings
            from bot.storage.engine import MIGRATION_LOG_FORMAT, migrate_database
            from bot.storage.sqlite import create_database_file, prepare_data_dir

            # Alembic's progress, plain: a bot migrating through this logs the lines its way.
            logging.basicConfig(level=args.log_level, format=MIGRATION_LOG_FORMAT)
            # Not the plugins Alembic (1.17 on) sets up: seven lines at every migration.
            logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
            settings = load_settings(DatabaseSettings)
            if settings.database_url.startswith(SQLITE_PREFIX):
                # As a start makes them, the owner's alone (SQLite follows the umask).
                prepare_data_dir(settings.data_dir)
                create_database_file(settings.database_url)
            try:
                asyncio.run(migrate_database(settings.database_url))
            except Exception as exc:  # one line, the last: the bot that started this quotes it
                first = str(exc).splitlines()[:1]  # SQLAlchemy's go on with the SQL
                print(f"error: {type(exc).__name__}: {''.join(first)}", file=sys.stderr)
                return 1
            return 0
        from bot.app import run

        return asyncio.run(run())
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
