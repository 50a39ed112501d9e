"""Database engine, sessions and schema migrations (Alembic) applied at start-up."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Insert, Table, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import SettingsError
from bot.storage import sqlite

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

# An installed wheel carries the Alembic revisions inside the package (see pyproject.toml); a
# checkout, editable install included, keeps them at the top level where `alembic` is run.
_INSTALLED_MIGRATIONS = Path(__file__).resolve().parent.parent / "_migrations"
MIGRATIONS_DIR = (
    _INSTALLED_MIGRATIONS
    if _INSTALLED_MIGRATIONS.is_dir()
    else _INSTALLED_MIGRATIONS.parent.parent / "migrations"
)


# Seconds a statement may take on PostgreSQL before it is cut (StatementTimeout). Without a bound
# a statement waiting on a row lock that is never let go (a stuck replica, an admin's psql left
# in a transaction) or on a server cut off mid-answer (a half-open connection) waited for ever,
# and the checks, the outbox or a handler with it: alerts stopped with no line in the log. The
# bot's statements take milliseconds (a claim of 50 logins, a batch of a sweep's writes, a
# /history read): this is thousands of times that, yet a look, an outbox pass or a command held
# up says so within half a minute, and the next one tries again. The bound is the driver's
# (asyncpg's command_timeout, for each step of a statement: prepare, execute), not the server's
# statement_timeout/lock_timeout: the server cannot cut what it no longer hears (a partition),
# and a pooler (PgBouncer) may refuse those settings at connect. asyncpg asks the server to
# cancel the statement, and drops the connection when even that goes unanswered within the
# bound. SQLite has busy_timeout (bot.storage.sqlite).
STATEMENT_TIMEOUT = 30.0


class StatementTimeout(TimeoutError):
    """A statement outlasted the engine's bound and was cut: the database is held up (a lock
    held elsewhere, an unreachable server). Its transaction is rolled back like any failed
    one's; callers retry it on their usual path, as after any database error (a TimeoutError,
    so an OSError, which those that say "database unavailable" catch with SQLAlchemy's)."""


def create_engine(url: str, *, statement_timeout: float | None = STATEMENT_TIMEOUT) -> AsyncEngine:
    """The engine of DATABASE_URL; on PostgreSQL each statement is cut after
    `statement_timeout` seconds (None: never, for the migrations and copy-data, whose one
    statement may rightly take long and whose operator sees it wait)."""
    if make_url(url).get_backend_name() != "sqlite":
        if statement_timeout is None:
            return create_async_engine(url)
        engine = create_async_engine(url, connect_args={"command_timeout": statement_timeout})
        event.listen(engine.sync_engine, "handle_error", _cut(statement_timeout))
        return engine
    # The pool's reset is left to SQLite's own (bot.storage.sqlite.configured).
    return sqlite.configured(create_async_engine(url, pool_reset_on_return=None))


def _cut(seconds: float) -> Callable[[ExceptionContext], BaseException | None]:
    def cut(context: ExceptionContext) -> BaseException | None:
        # asyncpg's own is a bare TimeoutError(), which says nothing in a log line. Not one
        # while connecting (no connection yet): that is asyncpg's connect timeout, not ours.
        if type(context.original_exception) is TimeoutError and context.connection is not None:
            return StatementTimeout(
                f"a database statement ran past {seconds:g} s and was cut "
                "(a lock held by another connection, or the server not answering)"
            )
        return None

    return cut


def upsert(dialect: str, table: Table | type[object]) -> Insert:
    """An INSERT that can say ON CONFLICT, for the engine's dialect (both spell it alike).

    A race to insert the same key is settled by the statement, never by a caught
    IntegrityError on SQLite: pysqlite keeps the failed statement marked in use, and
    SQLAlchemy's aiosqlite cursor, left to the garbage collector, resets it there - on the
    event loop's thread, which then waits for that connection's lock. When the connection's
    own thread was itself waiting to write (for a writer that needs the loop to commit), the
    whole bot stood still for busy_timeout (5 s), and the write failed "database is locked".

    The dialect's module is the engine's, so loaded already: PostgreSQL's cost an SQLite bot
    2 MB of memory."""
    return importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(table)


# The unit of work as the layers above name it: they hold sessions, the queries stay below.
Session = AsyncSession
Sessions = async_sessionmaker[AsyncSession]


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, expire_on_commit=False)


# The newest revision, the one the models describe. A database found at it needs no migration,
# and Alembic is then never imported: it would stay resident for the process's life (≈ 11 MB)
# for nothing. tests/test_migrations.py fails when a revision is added and this is not moved.
SCHEMA_REVISION = "0009"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# A PostgreSQL advisory lock key (the lock space is per database): the bytes "smscmigr" as an
# integer, unlikely to meet another application's keys on a shared server.
MIGRATION_LOCK = int.from_bytes(b"smscmigr")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision over the app's own engine (Alembic is loaded
    only when it is not there yet).

    Replicas starting together would each see an old schema and run the same revisions; on
    PostgreSQL the first takes a transaction-scoped lock, the others wait for its commit and
    then find the schema at head. (SQLite serves one process: see bot.storage.instance.)"""
    if await _revisions(engine) == [SCHEMA_REVISION]:
        return
    from alembic import command

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
            )
        await connection.run_sync(upgrade)


# How `python -m bot migrate` logs, for migrate_apart to read its lines back.
MIGRATION_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


async def migrate_apart(engine: AsyncEngine) -> None:
    """As `migrate`, with Alembic run in a child process (`python -m bot migrate`) when the
    schema is behind: imported here, Alembic and Mako would stay resident for the rest of the
    serving process's life (≈ 11 MB). MigrationError when the child fails."""
    if await _revisions(engine) == [SCHEMA_REVISION]:
        return
    if engine.url.database in (None, "", ":memory:"):  # SQLite in memory: no other process sees it
        await migrate(engine)
        return
    # The URL the bot runs on, whatever .env or the environment gave it, not read again.
    env = {**os.environ, "DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate",
        "--log-level",
        logging.getLevelName(logging.getLogger().getEffectiveLevel()),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await child.communicate()
    except asyncio.CancelledError:  # stopped while starting: the migration's transaction rolls back
        child.terminate()
        await child.wait()
        raise
    lines = output.decode(errors="replace").strip().splitlines()
    if child.returncode != 0:
        # The child's last line says why, in one line (bot.__main__'s `migrate`).
        why = lines.pop() if lines else f"exit code {child.returncode}"
    levels = logging.getLevelNamesMapping()
    for line in lines:  # Alembic's "Running upgrade ..." lines, in the bot's log
        level, _, message = line.partition(" ")
        if level in levels:
            log.log(levels[level], "migration %s", message)
        else:  # not a log line (a warning Python printed, say)
            log.info("migration %s", line)
    if child.returncode != 0:
        raise MigrationError(f"migrating the database schema failed: {why}")


class MigrationError(SettingsError):
    """The schema of DATABASE_URL's database could not be brought to the newest revision (a
    database of a newer version of the bot, say): the start stops as on a bad setting, with
    one line saying why."""


async def migrate_database(url: str) -> None:
    """`migrate` over an engine of its own (`python -m bot migrate`), unbounded: a migration of
    a large table may rightly take long, and a replica's waits here on another's lock until
    that one's migrations are done (cut, the start would fail half-way)."""
    engine = create_engine(url, statement_timeout=None)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


async def _revisions(engine: AsyncEngine) -> list[str]:
    """The revisions Alembic recorded the schema at; none for a new database. Read outside
    the migration's lock: a schema at head stays there, whoever migrates meanwhile."""
    async with engine.connect() as connection:
        if not await connection.run_sync(lambda c: inspect(c).has_table("alembic_version")):
            return []
        found = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        return list(found.scalars())
