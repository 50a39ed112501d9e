"""`python -m bot copy-data --to URL`: the bot's database (DATABASE_URL, typically the SQLite
file of one container) copied into a new, empty database (typically the PostgreSQL of several
replicas), so that a team moves to replicas without losing a chat, an account or its history.

Why it works the way it does:
- The target is refused unless it holds no row of ours: merging into a database in use would
  mix two bots' ids and alerts. It is checked before anything is written, so a refused target
  is left as it was; then migrated like the bot migrates at start.
- The rows go through the models' column types (Core, not the ORM): Decimal money stays exact
  text, times stay UTC, and the SMSC secrets stay the Fernet tokens they are, readable only
  with the same key, which the replicas must be given.
- The source is locked as a bot locks it for its life: while a bot runs on it the copy is
  refused, as what the bot wrote after it would be lost.
- All rows are read in one read transaction of the source (a consistent picture) and
  streamed in batches, since history may be millions of rows; they are written in one
  transaction of the target, so a copy that fails leaves it empty, ready for another try.
- PostgreSQL hands out ids from sequences that a copy with explicit ids does not advance: each
  is set past the copied ids, or the next account added would collide with a copied one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from alembic.util import CommandError
from pydantic import SecretStr, ValidationError
from sqlalchemy import func, inspect, literal, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.config import SettingsError, load_settings
from bot.config.sections import DatabaseSettings
from bot.storage.crypto import KEY_FILE_NAME
from bot.storage.engine import create_engine, migrate
from bot.storage.instance import single_instance
from bot.storage.models import Base
from bot.storage.sqlite import create_database_file

# Rows per read and per INSERT: little memory, few round trips.
BATCH_ROWS = 1000


class TransferError(Exception):
    """The copy cannot be made or failed; the message is one line, with no password in it."""


class TransferSettings(DatabaseSettings):
    """The source, and whether the key is configured: the output says where the key is (the
    command needs neither a bot token nor the key itself)."""

    secret_key: SecretStr | None = None


async def copy_data(target_url: str) -> str:
    """Copy every table of DATABASE_URL into `target_url`; what to tell the operator, or
    TransferError/SettingsError."""
    settings = load_settings(TransferSettings)
    source_url, target_url = settings.database_url, _checked_target(target_url)
    _require_source_file(source_url)
    # Unbounded (see STATEMENT_TIMEOUT): a copy of millions of rows, and the migrations, may
    # rightly take long, and the operator who runs it sees it wait.
    source = create_engine(source_url, statement_timeout=None)
    target = create_engine(target_url, statement_timeout=None)
    try:
        async with contextlib.AsyncExitStack() as held:
            # The lock a bot holds on its database for its life (instance.single_instance),
            # held for the copy: what a bot still running wrote after it would be lost, and
            # one started meanwhile would write into the source. Taken as a lone process's,
            # so replicas on PostgreSQL (which share it) refuse the copy too.
            with _failing(f"cannot open the bot's database {shown(source_url)}"):
                try:
                    await held.enter_async_context(single_instance(source, fleet=False))
                except SettingsError:
                    raise TransferError(
                        f"the bot is running on {shown(source_url)}: stop it first"
                    ) from None
            counts = await _migrate_and_copy(source, source_url, target, target_url)
    finally:
        await source.dispose()
        await target.dispose()
    return _report(source_url, target_url, counts, settings.secret_key is not None)


async def _migrate_and_copy(
    source: AsyncEngine, source_url: str, target: AsyncEngine, target_url: str
) -> dict[str, int]:
    # What the bot does at each start: a database of an older version gets the newest
    # columns, so that every model column can be read.
    with _failing(f"cannot open the bot's database {shown(source_url)}"):
        await migrate(source)
    if make_url(target_url).get_backend_name() == "sqlite":
        with _failing(f"cannot create {shown(target_url)}"):
            create_database_file(target_url)
    with _failing(f"cannot use the target database {shown(target_url)}"):
        async with target.connect() as connection:
            held = await _tables_with_rows(connection)
        if held:
            raise TransferError(
                f"the target database {shown(target_url)} already holds data "
                f"({', '.join(held)}): copy only into a new, empty database, never into "
                "one in use"
            )
        await migrate(target)
    with _failing("the copy failed and was undone (the target holds no row of it)"):
        return await _copy(source, target)


def shown(url: str) -> str:
    """A URL as it may be printed: without its password, as user:password@ or as ?password=
    (asyncpg takes both)."""
    parsed = make_url(url)
    rest = parsed.difference_update_query(["password"])
    text = rest.render_as_string(hide_password=True)
    if "password" not in parsed.query:
        return text
    # Written here: SQLAlchemy would write a query's *** as %2A%2A%2A.
    return f"{text}{'&' if rest.query else '?'}password=***"


def _checked_target(url: str) -> str:
    """The same rules as DATABASE_URL: a known database, its asyncio driver installed."""
    try:
        return DatabaseSettings(database_url=url).database_url
    except ValidationError as error:
        reason = error.errors()[0]["msg"].removeprefix("Value error, ")
        raise TransferError(f"--to is invalid: {reason}") from None


def _require_source_file(url: str) -> None:
    """Opening an SQLite file that is not there would create an empty one, and copy nothing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        raise TransferError(
            f"there is no database at {parsed.database or '(none)'}: run this in the bot's "
            "folder (where its .env is), or set DATABASE_URL to the bot's database"
        )


@contextlib.contextmanager
def _failing(what: str) -> Iterator[None]:
    """A database's failure as one line: what was being done, and the driver's reason."""
    try:
        yield
    except (SQLAlchemyError, CommandError, OSError) as error:
        raise TransferError(f"{what}: {_reason(error)}") from None


def _reason(error: Exception) -> str:
    if isinstance(error, DBAPIError):
        # The driver's own message: SQLAlchemy's adds the statement and a link, over lines.
        error = error.orig  # type: ignore[assignment]
    text = str(error).split(">: ", 1)[-1]  # asyncpg's as adapted: "<class '...'>: message"
    lines = text.strip().splitlines()
    return lines[0] if lines else type(error).__name__


async def _tables_with_rows(connection: AsyncConnection) -> list[str]:
    """Those of our tables the database has and that hold a row: by name only, so that a
    database of an older revision is judged as well."""
    present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    held = []
    for table in Base.metadata.sorted_tables:
        if table.name in present:
            query = select(literal(1)).select_from(table).limit(1)
            if (await connection.execute(query)).first() is not None:
                held.append(table.name)
    return held


async def _copy(source: AsyncEngine, target: AsyncEngine) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with source.connect() as reading, target.begin() as writing:
        await _begin_snapshot(reading)
        # Parents before children (foreign keys), ids as they were.
        for table in Base.metadata.sorted_tables:
            rows = await reading.stream(select(table).order_by(*table.primary_key.columns))
            counts[table.name] = 0
            async for batch in rows.partitions(BATCH_ROWS):
                await writing.execute(table.insert(), [row._asdict() for row in batch])
                counts[table.name] += len(batch)
        if target.dialect.name == "postgresql":
            await _advance_sequences(writing)
        await reading.rollback()  # read only: nothing to commit
    return counts


async def _begin_snapshot(reading: AsyncConnection) -> None:
    """One read transaction over all tables. SQLite's driver opens none before a SELECT (each
    would see the database as it is then), so it is begun explicitly; PostgreSQL's default
    isolation would also take a new snapshot for each statement."""
    if reading.dialect.name == "sqlite":
        await reading.exec_driver_sql("BEGIN")
    else:  # the transaction begins with the first SELECT, at this level
        await reading.execution_options(isolation_level="REPEATABLE READ")


async def _advance_sequences(writing: AsyncConnection) -> None:
    for table in Base.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:  # chats keep Telegram's ids; the others are keyed by text
            continue
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        next_id = func.coalesce(func.max(column), 0) + 1
        await writing.execute(select(func.setval(sequence, next_id, False)))


def _report(source_url: str, target_url: str, counts: dict[str, int], key_set: bool) -> str:
    width = max(map(len, counts))
    rows = "\n".join(f"  {name:<{width}}  {count:>10,}" for name, count in counts.items())
    return (
        f"Copied {shown(source_url)} into {shown(target_url)}:\n{rows}\n"
        "Next: keep the old bot stopped (what it writes from now on is not in the copy). Start "
        "the replicas with DATABASE_URL set to the new database, REDIS_URL, and "
        f"{_key_advice(source_url, key_set)}. Keep the old database as a backup until they "
        "run well."
    )


def _key_advice(source_url: str, key_set: bool) -> str:
    """Where the key is that the copied secrets need: they were copied encrypted with it."""
    if key_set:
        return "the same SECRET_KEY as here (the SMSC secrets are still encrypted with it)"
    parsed = make_url(source_url)
    if parsed.get_backend_name() == "sqlite":
        key = Path(parsed.database or "").parent / KEY_FILE_NAME
        if key.is_file():
            return (
                f"SECRET_KEY set to the key in {key} (the SMSC secrets are still encrypted with it)"
            )
    return (
        "the SECRET_KEY this bot ran with (the SMSC secrets are still encrypted with it; "
        "neither SECRET_KEY nor a secret.key beside the database is here)"
    )
