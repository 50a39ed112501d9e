"""Plain records: read as rows, written back by primary key, only what changed."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import event, select, update

from bot.storage.models import Account, AccountState, Chat
from bot.storage.records import records, write
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

WHEN = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


async def add_accounts(sessionmaker, count: int) -> None:
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        for n in range(count):
            session.add(
                Account(
                    chat_id=1, name=f"a{n}", site="s", login=f"a{n}", secret=b"x", check_interval=60
                )
            )
        await session.commit()


async def read_all(connection):
    table = Account.__table__
    return records(await connection.execute(select(table).order_by(table.c.id)))


async def test_changed_columns_are_written_with_their_types_and_others_left_alone(
    sessionmaker, request
):
    await add_accounts(sessionmaker, 3)
    async with sessionmaker() as session:
        connection = await session.connection()
        first, second, third = await read_all(connection)
        first.last_balance, first.last_checked_at = Decimal("12.34"), WHEN
        second.state = AccountState.LOW
        # Meanwhile in the same transaction (as a /threshold would be, before the write):
        # a column no record changed keeps what was written there.
        await connection.execute(update(Account).values(threshold=Decimal(100)))
        engine = sessionmaker.kw["bind"].sync_engine
        trips = request.getfixturevalue("trips")
        statements = []

        def note(conn, cursor, sql, parameters, context, executemany):
            statements.append(executemany)

        event.listen(engine, "before_cursor_execute", note)
        try:
            assert await write(connection, Account.__table__, [first, second, third]) == 2
        finally:
            event.remove(engine, "before_cursor_execute", note)
        written = len(trips)
        await session.commit()
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Account).order_by(Account.id))).all()
    assert [(a.last_balance, a.last_checked_at, a.state) for a in rows] == [
        (Decimal("12.34"), WHEN, AccountState.UNKNOWN),
        (None, None, AccountState.LOW),
        (None, None, AccountState.UNKNOWN),
    ]
    assert all(a.threshold == Decimal(100) for a in rows)
    if sessionmaker.kw["bind"].dialect.name == "sqlite":
        assert written == 2  # a trip to aiosqlite's thread for each set of columns (it was three)
    else:  # one statement for each set of columns, its rows as arrays: not one for each row
        assert statements == [False, False]


async def test_many_rows_are_written_by_one_statement_of_arrays_on_postgresql(sessionmaker):
    """The rows of one set of columns, hundreds in a sweep, with NULLs among their values."""
    await add_accounts(sessionmaker, 300)
    async with sessionmaker() as session:
        connection = await session.connection()
        await connection.execute(update(Account).values(last_balance=Decimal("0.5")))
        accounts = await read_all(connection)
        for n, account in enumerate(accounts):
            account.last_balance = Decimal(n) if n % 2 else None
            account.last_checked_at = WHEN
        statements = []
        engine = sessionmaker.kw["bind"].sync_engine

        def note(conn, cursor, sql, parameters, context, executemany):
            statements.append(executemany)

        event.listen(engine, "before_cursor_execute", note)
        try:
            assert await write(connection, Account.__table__, accounts) == 300
        finally:
            event.remove(engine, "before_cursor_execute", note)
        await session.commit()
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Account).order_by(Account.id))).all()
    assert [(a.last_balance, a.last_checked_at) for a in rows] == [
        (Decimal(n) if n % 2 else None, WHEN) for n in range(300)
    ]
    if sessionmaker.kw["bind"].dialect.name != "sqlite":
        assert statements == [False]


async def test_a_record_reads_like_the_mapped_row(sessionmaker):
    await add_accounts(sessionmaker, 1)
    async with sessionmaker() as session:
        [record] = await read_all(await session.connection())
        mapped = await session.get_one(Account, record.id)
    assert (record.name, record.state, record.check_interval, record.chat_id) == (
        mapped.name,
        mapped.state,
        mapped.check_interval,
        mapped.chat_id,
    )
    assert record.changes() == {}


async def test_only_values_that_differ_are_changes(sessionmaker):
    await add_accounts(sessionmaker, 1)
    async with sessionmaker() as session:
        connection = await session.connection()
        await connection.execute(update(Account).values(last_balance=Decimal("5.00")))
        [record] = await read_all(connection)
    record.last_balance = Decimal("5")  # equal, another object: no change
    record.name = "a0"  # the same text again
    record.failures = 2
    record.secret_hint = "x"  # not read, set since: a change
    assert record.changes() == {"failures": 2, "secret_hint": "x"}
