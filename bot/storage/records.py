"""Rows as plain records, for the paths that read and write hundreds of rows at a time (the
scheduled checks write up to 500 accounts a transaction).

A mapped instance costs its identity-map entry, attribute instrumentation on every read and
write, and a unit-of-work flush that works out and emits each row's UPDATE: in a sweep, most of
the bot's CPU. A `Record` has the same attribute names as the mapped class, so code that only
reads and sets columns (bot.alerting.monitoring) takes either, and `write` sends what changed
with one statement per set of changed columns (bot.storage.direct.write_rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Result, Select, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.direct import Direct, write_rows


class Record(SimpleNamespace):
    """A row's columns as attributes, and what they were when read. A column not read may be
    set: it counts as changed."""

    __slots__ = ("_read",)  # the values read, in the order of their columns

    def changes(self) -> dict[str, Any]:
        # The attributes keep the order of their first setting: the columns read come first,
        # in the order of their values. A value never set again is the one read (`is`: no
        # comparison of Decimals or datetimes), as most are.
        current = iter(vars(self).items())
        changed = {
            name: value
            for was, (name, value) in zip(self._read, current, strict=False)
            if value is not was and value != was
        }
        changed.update(current)  # the columns not read, set since
        return changed


def records(result: Result[Any]) -> list[Record]:
    """Records of a result's rows."""
    keys = tuple(result.keys())
    return [_record(keys, row) for row in result]


async def read(held: Direct, statement: Select[Any], values: Mapping[str, Any]) -> list[Record]:
    """Records of a read run by the driver itself (bot.storage.direct)."""
    keys = tuple(column.key for column in statement.selected_columns)
    return [_record(keys, row) for row in await held.records(statement, values)]


_new = Record.__new__


def _record(keys: tuple[str, ...], row: Sequence[Any]) -> Record:
    # Filled past any `__init__` (SimpleNamespace's takes keywords): half the cost of a record,
    # of which a batch makes hundreds.
    record = _new(Record)
    vars(record).update(zip(keys, row, strict=True))
    record._read = row
    return record


async def write(connection: AsyncConnection, table: Table, changed: Iterable[Record]) -> int:
    """UPDATE each record's changed columns by primary key `id`, in the connection's
    transaction; returns how many rows had changes."""
    by_columns: defaultdict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for record in changed:
        if changes := record.changes():
            by_columns[tuple(sorted(changes))].append({"id": record.id, **changes})
    for columns, rows in by_columns.items():
        # The SET clause comes from the keys: one statement per set of columns.
        await write_rows(connection, table, ("id", *columns), rows, update_by="id")
    return sum(len(rows) for rows in by_columns.values())
