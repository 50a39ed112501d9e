"""Rows as plain records, for the paths that read and write hundreds of rows at a time (the
scheduled checks write up to 500 accounts a transaction).

A mapped instance costs its identity-map entry, attribute instrumentation on every read and
write, and a unit-of-work flush that works out and emits each row's UPDATE: in a sweep, most of
the bot's CPU. A `Record` has the same attribute names as the mapped class, so code that only
reads and sets columns (bot.alerting.monitoring) takes either, and `write` sends what changed
with one executemany per set of changed columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Result, Table, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection


class Record(SimpleNamespace):
    """A row's columns as attributes, and what they were when read. A column not read may be
    set: it counts as changed."""

    __slots__ = ("_read",)

    def __init__(self, row: Mapping[str, Any]) -> None:
        super().__init__(**row)
        self._read = row

    def changes(self) -> dict[str, Any]:
        read = self._read
        return {
            name: value
            for name, value in vars(self).items()
            if name not in read or read[name] != value
        }


def records(result: Result[Any]) -> list[Record]:
    """Records of a result's rows."""
    keys = tuple(result.keys())
    return [Record(dict(zip(keys, row, strict=True))) for row in result]


async def write(connection: AsyncConnection, table: Table, changed: Iterable[Record]) -> int:
    """UPDATE each record's changed columns by primary key `id`, in the connection's
    transaction; returns how many rows had changes."""
    by_columns: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for record in changed:
        if changes := record.changes():
            by_columns[tuple(sorted(changes))].append({"record_id": record.id, **changes})
    statement = update(table).where(table.c.id == bindparam("record_id"))
    for rows in by_columns.values():
        # The SET clause comes from the parameters' keys: one statement per set of columns.
        await connection.execute(statement, rows)
    return sum(len(rows) for rows in by_columns.values())
