"""Statements compiled once and run by the driver itself, past SQLAlchemy's work for each run:
writes of many rows on any database (`write_rows`), and on SQLite whole statements on a
connection held for the purpose (`held`) or in a pooled connection's transaction (`on`), both a
`Direct`: one trip to aiosqlite's thread per statement, where SQLAlchemy's cursor takes three
or four (cursor, execute, fetch, close).

Each trip wakes that thread and then the event loop. On an idle bot a trip from idle costs
≈ 0.2-0.5 ms of CPU in wake-ups alone: the scheduled checks' look for due accounts, four times a
second through a pooled connection, kept 1.3 % of a core busy with nothing due.

A held connection is in autocommit: a statement alone is its own transaction (a read holds no
snapshot after it), several go in one between `begin` and `commit`. Statements are compiled by
SQLAlchemy for the engine's dialect, values bound with its type processing, so stored and
compared exactly as the ORM's own statements store them; `records` reads values back with the
same processing (Decimal, aware datetimes, enums), as the ORM would load them.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    ARRAY,
    JSON,
    Dialect,
    Executable,
    QueuePool,
    Select,
    Table,
    bindparam,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

Binds = list[tuple[str, Callable[[Any], Any] | None]]


class Direct:
    """A held aiosqlite connection (see the module)."""

    def __init__(self, driver: Any, dialect: Dialect) -> None:
        self._driver = driver
        self._dialect = dialect

    async def rowcount(self, statement: Executable, values: Mapping[str, Any]) -> int:
        """Run a write; how many rows it changed."""
        cursor = await self._driver.execute(*self._bound(statement, values))
        return cursor.rowcount

    async def rows(self, statement: Executable, values: Mapping[str, Any]) -> list[Any]:
        """Run a read: its rows as the driver gives them (no result processing)."""
        return list(await self._driver.execute_fetchall(*self._bound(statement, values)))

    async def records(
        self, statement: Select[Any], values: Mapping[str, Any]
    ) -> list[tuple[Any, ...]]:
        """Run a read: its rows with each column's result processing."""
        rows = await self.rows(statement, values)
        if not rows:
            return []
        # Column by column, each value through its processor by `map`: no Python frame for a
        # value whose processor is C (the cached conversions of bot.storage.models). Value by
        # value in a comprehension cost a sweep more than SQLAlchemy's own row processing.
        columns: list[Iterable[Any]] = list(zip(*rows, strict=True))
        for index, process in _result_processors(statement, self._dialect):
            columns[index] = map(process, columns[index])
        return list(zip(*columns, strict=True))

    async def many(self, sql: str, values: list[tuple[Any, ...]]) -> None:
        """Run a write of bound values (`executemany`'s) once for each row of them."""
        await self._driver.executemany(sql, values)

    async def begin(self) -> None:
        await self._driver.execute("BEGIN")

    async def commit(self) -> None:
        await self._driver.execute("COMMIT")

    async def rollback(self) -> None:
        """Roll back the transaction `begin` opened, if one is open."""
        if self._driver.in_transaction:
            await self._driver.execute("ROLLBACK")

    def _bound(self, statement: Executable, values: Mapping[str, Any]) -> tuple[str, list[Any]]:
        compiled, sql, binds = _compiled(statement, self._dialect)
        given = compiled.construct_params(values)
        return sql, [given[n] if process is None else process(given[n]) for n, process in binds]


async def write_rows(
    connection: AsyncConnection,
    table: Table,
    keys: tuple[str, ...],
    rows: list[dict[str, Any]],
    *,
    update_by: str | None = None,
) -> None:
    """Write rows of values (dicts, all with these keys) in the connection's transaction, on
    any database: INSERT them into `table`, or with `update_by` (one of the keys) set the other
    keys' columns of the row whose `update_by` column has the row's value. Each value goes
    through its column's bind processor alone: SQLAlchemy's own executemany works out every
    row's parameters through its compiler (≈ 4 µs a row, a sweep writes two rows an account).

    On PostgreSQL one statement writes them all, each column's values bound as one array and
    unnested (the same SQL for any number of rows): an executemany there runs the statement
    once a row, a message each way per row that each end's CPU pays for. On SQLite the statement
    runs once a row at the driver, in one trip to aiosqlite's thread where SQLAlchemy's cursor
    took three (SQLite has no arrays, and a row costs it no message)."""
    sql, names, processors = _writing(table, keys, update_by, connection.dialect)
    # Column by column, by `map` (see Direct.records).
    columns = [
        column if process is None else map(process, column)
        for column, process in zip(
            (map(itemgetter(name), rows) for name in names), processors, strict=True
        )
    ]
    if (held := await on(connection)) is None:  # PostgreSQL: one statement of arrays
        await connection.exec_driver_sql(sql, tuple(list(column) for column in columns))
    else:
        await held.many(sql, list(zip(*columns, strict=True)))


@functools.cache
def _writing(
    table: Table, keys: tuple[str, ...], update_by: str | None, dialect: Dialect
) -> tuple[str, tuple[str, ...], list[Callable[[Any], Any] | None]]:
    """`write_rows`'s SQL, with the key of each positional value and its column's bind
    processor: worked out once per table, keys and database."""
    set_keys = tuple(key for key in keys if key != update_by)
    if dialect.name != "sqlite":  # PostgreSQL (`on` gives no Direct there)
        arrays = [bindparam(key, type_=ARRAY(table.c[key].type)) for key in keys]
        rows = func.unnest(*arrays).table_valued(*keys).render_derived(name="v")
        if update_by is None:
            statement: Executable = insert(table).from_select(keys, select(rows))
        else:
            values = {key: rows.c[key] for key in set_keys}
            statement = update(table).values(values).where(table.c[update_by] == rows.c[update_by])
        compiled = statement.compile(dialect=dialect)
    elif update_by is None:
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
    else:
        by_value = bindparam(_BY)  # a name of its own: `update_by`'s is the SET clause's
        by_row = update(table).where(table.c[update_by] == by_value)
        compiled = by_row.compile(dialect=dialect, column_keys=set_keys)
    names = tuple(update_by if name == _BY else name for name in compiled.positiontup)
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    ]
    return str(compiled), names, processors


_BY = "update_by_value"


@functools.cache
def _compiled(statement: Executable, dialect: Dialect) -> tuple[Any, str, Binds]:
    """The statement compiled for the dialect, its SQL, and each positional value's name and
    bind processor: once per statement (callers pass statements built once), not per run."""
    compiled = statement.compile(dialect=dialect)
    binds = [
        (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
        for name in compiled.positiontup
    ]
    return compiled, str(compiled), binds


@functools.cache
def _result_processors(
    statement: Select[Any], dialect: Dialect
) -> list[tuple[int, Callable[[Any], Any]]]:
    """Each column that has a result processor: its index, and the processor."""
    processors = (
        column.type.dialect_impl(dialect).result_processor(dialect, None)
        for column in statement.selected_columns
    )
    return [(index, process) for index, process in enumerate(processors) if process is not None]


def listed(name: str) -> Select[Any]:
    """The values of a list given as the parameter `name`, for an IN on SQLite: bound as one
    JSON text (the parameter's type encodes it), so the SQL stays the same however many there
    are (SQLAlchemy's expanding IN renders a placeholder for each), and is compiled once and
    run here."""
    return select(literal_column("value")).select_from(func.json_each(bindparam(name, type_=JSON)))


async def on(connection: AsyncConnection) -> Direct | None:
    """A `Direct` on the connection's own driver connection, in its transaction, on SQLite;
    None elsewhere (asyncpg makes no thread trips)."""
    if connection.dialect.name != "sqlite":
        return None
    raw = await connection.get_raw_connection()
    return Direct(raw.driver_connection, connection.dialect)


@asynccontextmanager
async def held(engine: AsyncEngine) -> AsyncIterator[Direct | None]:
    """A `Direct` on a connection of the engine's pool, held while in the block; None where
    nothing is gained or it cannot be: other databases (asyncpg makes no thread trips) and an
    in-memory SQLite, whose one connection all share and whose transactions a switch to
    autocommit would commit."""
    if engine.dialect.name != "sqlite" or not isinstance(engine.sync_engine.pool, QueuePool):
        yield None
        return
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        raw = await connection.get_raw_connection()
        yield Direct(raw.driver_connection, engine.dialect)
