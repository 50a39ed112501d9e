import asyncio
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import DateTime, bindparam, event, func, inspect, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage import stats
from bot.storage.chats import ensure_chat, migrate_chat
from bot.storage.direct import held
from bot.storage.engine import StatementTimeout, create_engine, migrate
from bot.storage.models import Account, AccountState, BalanceSample, Chat
from tests.alerting_fixtures import stored_account
from tests.servers import BOTH_DATABASES


@BOTH_DATABASES
async def test_migration_creates_schema_and_is_idempotent(engine):
    await migrate(engine)  # second run: nothing to do, no error
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert {"chats", "accounts", "balance_samples", "alembic_version"} <= set(tables)


@BOTH_DATABASES
async def test_money_is_exact_and_times_are_utc(sessionmaker):
    moscow = timezone(timedelta(hours=3))
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        acc = stored_account(1)
        acc.threshold = Decimal("0.10")
        acc.last_balance = Decimal("123456789.01")
        acc.last_checked_at = datetime(2026, 1, 1, 12, tzinfo=moscow)
        session.add(acc)
        await session.commit()
    async with sessionmaker() as session:
        loaded = await session.scalar(select(Account))
    assert loaded.threshold == Decimal("0.10") and str(loaded.threshold) == "0.10"
    assert loaded.last_balance == Decimal("123456789.01")
    assert loaded.last_checked_at == datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert loaded.last_checked_at.tzinfo is UTC


async def test_sqlite_keeps_times_as_the_text_it_always_had(sessionmaker):
    """SQLite databases written before the bot bound times itself read and compare as ever:
    a time is the text SQLAlchemy's own DATETIME stores, microseconds always shown."""
    written = datetime(2026, 1, 1, 9, tzinfo=UTC)
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        acc = stored_account(1)
        acc.last_checked_at, acc.next_check_at = written, written.replace(microsecond=123)
        session.add(acc)
        await session.commit()
        stored = (
            await session.execute(text("SELECT last_checked_at, next_check_at FROM accounts"))
        ).one()
        assert tuple(stored) == ("2026-01-01 09:00:00.000000", "2026-01-01 09:00:00.000123")
        # A time written the old way (SQLAlchemy's DateTime, naive UTC) reads back, and
        # compares in SQL with the times bound now.
        old_way = text("UPDATE accounts SET lease_until = :at").bindparams(
            bindparam("at", type_=DateTime())
        )
        await session.execute(old_way, {"at": datetime(2026, 1, 1, 8, 59, 59, 999999)})
        await session.commit()
        loaded = await session.scalar(select(Account))
        assert loaded.lease_until == datetime(2026, 1, 1, 8, 59, 59, 999999, tzinfo=UTC)
        earlier = select(Account.id).where(Account.lease_until < Account.last_checked_at)
        assert await session.scalar(earlier) == loaded.id
        assert await session.scalar(select(Account.id).where(Account.lease_until < written))


@BOTH_DATABASES
async def test_naive_time_refused(sessionmaker):
    async with sessionmaker() as session:
        # The same wall time, aware, written just before (SQLite's times are remembered).
        session.add(Chat(id=2, type="private", created_at=datetime(2026, 1, 1, tzinfo=UTC)))
        await session.commit()
        session.add(Chat(id=1, type="private", language="en", created_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive"):
            await session.commit()


@BOTH_DATABASES
async def test_removing_account_removes_history(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        acc = stored_account(1)
        session.add(acc)
        await session.flush()
        session.add(
            BalanceSample(
                account_id=acc.id, taken_at=datetime.now(UTC), balance=Decimal(1), credit=Decimal(0)
            )
        )
        await session.commit()
        await session.delete(acc)
        await session.commit()
        assert (await session.scalars(select(BalanceSample))).all() == []


async def test_account_repr_has_no_secret():
    assert "token" not in repr(stored_account(1))


def test_a_bot_on_sqlite_does_not_load_postgresqls_dialect():
    # ≈ 2 MB resident for the process's life, for nothing.
    code = (
        "import sys, bot.runner\n"
        "from bot.storage.engine import create_engine, upsert\n"
        "from bot.storage.models import Chat\n"
        "upsert(create_engine('sqlite+aiosqlite:///bot.db').dialect.name, Chat)\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "sqlalchemy.dialects.sqlite" in done.stdout
    assert "postgresql" not in done.stdout


@BOTH_DATABASES
async def test_a_new_chat_speaking_twice_at_once_is_registered_once(sessionmaker):
    async def first_contact(language: str) -> Chat:
        async with sessionmaker() as session:
            return await ensure_chat(session, -7, "group", "Ops", language)

    chats = await asyncio.gather(first_contact("ru"), first_contact("en"))
    assert [chat.id for chat in chats] == [-7, -7]
    assert chats[0].language == chats[1].language  # whoever came first chose it, for both
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Chat)) == 1


@BOTH_DATABASES
async def test_group_upgraded_to_supergroup_keeps_accounts_and_settings(sessionmaker):
    settings = {
        "reminder_hours": 2,
        "hysteresis_percent": Decimal(10),
        "timezone": "Europe/Moscow",
        "digest_time": "09:30",
        "digest_sent_on": "2026-12-04",
        "quiet_hours": "22:00-07:00",
        "escalate_minutes": 15,
        "escalate_to": '["admins"]',
        "anomaly_factor": Decimal(5),
        "anomaly_minimum": Decimal(100),
    }
    async with sessionmaker() as session:
        group = await ensure_chat(session, -5, "group", "Ops", "ru")
        for key, value in settings.items():
            setattr(group, key, value)
        session.add(stored_account(-5))
        await session.commit()
        await migrate_chat(session, -5, -1005)
    async with sessionmaker() as session:
        assert await session.get(Chat, -5) is None
        chat = await session.get(Chat, -1005)
        assert chat.type == "supergroup" and chat.language == "ru"
        assert {key: getattr(chat, key) for key in settings} == settings
        assert [a.chat_id for a in (await session.scalars(select(Account))).all()] == [-1005]


@BOTH_DATABASES
async def test_migration_into_already_known_supergroup(sessionmaker):
    async with sessionmaker() as session:
        await ensure_chat(session, -5, "group", "Ops", "ru")
        session.add(stored_account(-5))
        await session.commit()
        await ensure_chat(session, -1005, "supergroup", "Ops", "en")
        await migrate_chat(session, -5, -1005)
    async with sessionmaker() as session:
        assert await session.get(Chat, -5) is None
        assert (await session.get(Chat, -1005)).language == "ru"
        assert [a.chat_id for a in (await session.scalars(select(Account))).all()] == [-1005]


async def test_a_chat_read_through_the_reader_is_the_one_the_orm_loads(engine, sessionmaker):
    """The bot reads each update's chat through a held connection (bot.storage.direct): the
    same values, of the same types, as the ORM's own query, and objects the session writes."""
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="group", title="Ops", language="ru", quiet_hours="23-07"))
        low = stored_account(1, "b-low")
        low.state, low.threshold = AccountState.LOW, Decimal("10.50")
        low.last_balance, low.low_since = Decimal("3.25"), datetime(2026, 1, 1, 9, tzinfo=UTC)
        session.add_all([stored_account(1, "a-new"), low])
        await session.commit()
    async with held(engine) as reader, sessionmaker() as session:
        taken = []
        event.listen(engine.sync_engine, "checkout", lambda *_: taken.append(1))
        read = await ensure_chat(session, 1, "group", "Ops", "ru", reader)
        assert taken == []  # nothing from the pool for a chat read that changes nothing
        async with sessionmaker() as orm_session:
            loaded = await ensure_chat(orm_session, 1, "group", "Ops", "ru")
        for got, expected in [(read, loaded), *zip(read.accounts, loaded.accounts, strict=True)]:
            columns = inspect(type(got)).columns.keys()
            assert [getattr(got, c) for c in columns] == [getattr(expected, c) for c in columns]
            assert [type(getattr(got, c)) for c in columns] == [
                type(getattr(expected, c)) for c in columns
            ]
        assert [a.name for a in read.accounts] == ["a-new", "b-low"]
        assert read.accounts[1].chat is read and not session.dirty

        read.accounts[1].threshold = Decimal("20")
        await session.commit()
        renamed = await ensure_chat(session, 1, "supergroup", "Ops team", "ru", reader)
        assert renamed is read  # the session's objects: the ORM reads, and keeps them
    async with held(engine) as reader, sessionmaker() as session:
        again = await ensure_chat(session, 1, "group", "Ops team", "ru", reader)
        assert (again.type, again.accounts[1].threshold) == ("group", Decimal("20"))
        new = await ensure_chat(session, 2, "private", None, "en", reader)
    async with sessionmaker() as session:
        assert (await session.get(Chat, 2)).language == new.language == "en"
        assert (await session.get(Chat, 1)).title == "Ops team"


async def test_a_checks_write_finds_the_accounts_it_holds_by_their_index(engine):
    # Scanning the accounts for each write of 50 logins made a sweep's cost grow with the
    # square of the accounts (SQLite did, for the (credentials_key, lease_until) pairs alone).
    lease = datetime(2026, 1, 1, tzinfo=UTC)
    statement = stats.held(stats.checkable(select(Account.id))).params(
        **stats.held_values([("key-1", lease), ("key-2", lease)])
    )
    expanded = {"render_postcompile": True}
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs=expanded)
    async with engine.connect() as connection:
        plan = await connection.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {compiled}", (None,) * len(compiled.positiontup)
        )
        steps = [row[-1] for row in plan]
    assert any(step.startswith("SEARCH accounts USING INDEX") for step in steps), steps
    assert not any(step.startswith("SCAN accounts") for step in steps), steps


async def accounts_read(postgres_url, statement, values, **fields) -> list[float]:
    """The rows of `accounts` each plan node of `statement` looked at (kept or filtered out),
    run under EXPLAIN ANALYZE (rolled back) with `values`, among 2,000 accounts with `fields`."""
    engine = create_engine(postgres_url)
    await migrate(engine)
    async with AsyncSession(engine) as session:
        session.add(Chat(id=1, type="supergroup", language="en"))
        session.add_all(
            stored_account(1, f"login{n}", credentials_key=f"key{n}", **fields) for n in range(2000)
        )
        await session.commit()
    compiled = statement.compile(dialect=engine.dialect)
    given, process = compiled.construct_params(values), compiled._bind_processors
    bound = [process[n](given[n]) if n in process else given[n] for n in compiled.positiontup]
    try:
        async with engine.connect() as connection:
            await connection.exec_driver_sql("ANALYZE accounts")
            explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}"
            (plan,) = (await connection.exec_driver_sql(explain, tuple(bound))).one()
            await connection.rollback()  # EXPLAIN ANALYZE ran it
    finally:
        await engine.dispose()
    nodes, read = [plan[0]["Plan"]], []
    while nodes:
        node = nodes.pop()
        nodes += node.get("Plans", [])
        if node.get("Relation Name") == "accounts":
            looked_at = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            read.append(looked_at * node["Actual Loops"])
    return read


async def test_a_claim_on_postgresql_reads_only_the_first_due_accounts(postgres_url):
    # Grouping every due account by its credentials cost each claim in proportion to all that
    # was due: ≈ 90 ms of the server's at 100,000 due, for each 50 logins claimed.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    values = {"now": now, "lease_until": now + timedelta(minutes=1), "limit": 5, "window": 100}
    read = await accounts_read(
        postgres_url, stats.claim_due("postgresql"), values, next_check_at=now
    )
    assert read and max(read) <= 100, read  # the window, not the 2,000 due


async def test_a_statement_held_up_by_a_lock_on_postgresql_is_cut_at_the_bound(postgres_url):
    # A row lock nobody lets go (an admin's psql left in a transaction, a stuck replica) held
    # every statement that needed the row for ever, and the checks or the outbox with it.
    engine = create_engine(postgres_url, statement_timeout=0.5)
    other = create_engine(postgres_url)
    await migrate(engine)
    async with AsyncSession(engine) as session:
        session.add(Chat(id=1, type="private", language="en"))
        await session.commit()
    rename = update(Chat).where(Chat.id == 1).values(language="ru")
    try:
        async with other.connect() as psql:
            await psql.execute(select(Chat).where(Chat.id == 1).with_for_update())
            started = time.monotonic()
            async with AsyncSession(engine) as session:
                with pytest.raises(StatementTimeout, match=r"ran past 0\.5 s and was cut"):
                    await asyncio.wait_for(session.execute(rename), 10)
            assert time.monotonic() - started < 5
            async with AsyncSession(engine) as session:  # what needs no locked row goes on
                assert await session.scalar(select(func.count()).select_from(Chat)) == 1
        # The lock let go, the same write through the same pool goes through.
        async with AsyncSession(engine) as session:
            await session.execute(rename)
            await session.commit()
            assert await session.scalar(select(Chat.language)) == "ru"
    finally:
        await engine.dispose()
        await other.dispose()


async def test_a_checks_write_on_postgresql_reads_only_the_accounts_it_holds(postgres_url):
    # The claims go as two arrays there (one SQL for any number): still found by the index.
    lease = datetime(2026, 1, 1, tzinfo=UTC)
    held = stats.held(stats.checkable(select(Account.id)), arrays=True)
    values = stats.held_values([("key1", lease), ("key2", lease)])
    read = await accounts_read(postgres_url, held, values, lease_until=lease)
    assert read and sum(read) <= 2, read  # the two held, not the 2,000
