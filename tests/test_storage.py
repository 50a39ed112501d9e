from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select

from bot.chats import ensure_chat, migrate_chat
from bot.models import Account, BalanceSample, Chat
from bot.storage import migrate


def account(chat_id: int, name: str = "shop") -> Account:
    return Account(
        chat_id=chat_id,
        name=name,
        site="https://smsc.ru",
        login=name,
        secret=b"token",
        check_interval=900,
    )


async def test_migration_creates_schema_and_is_idempotent(engine):
    await migrate(engine)  # second run: nothing to do, no error
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert {"chats", "accounts", "balance_samples", "alembic_version"} <= set(tables)


async def test_money_is_exact_and_times_are_utc(sessionmaker):
    moscow = timezone(timedelta(hours=3))
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        acc = account(1)
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


async def test_naive_time_refused(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en", created_at=datetime(2026, 1, 1)))
        with pytest.raises(Exception, match="naive"):
            await session.commit()


async def test_removing_account_removes_history(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        acc = account(1)
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
    assert "token" not in repr(account(1))


async def test_group_upgraded_to_supergroup_keeps_accounts(sessionmaker):
    async with sessionmaker() as session:
        await ensure_chat(session, -5, "group", "Ops", "ru")
        session.add(account(-5))
        await session.commit()
        await migrate_chat(session, -5, -1005)
    async with sessionmaker() as session:
        assert await session.get(Chat, -5) is None
        chat = await session.get(Chat, -1005)
        assert chat.type == "supergroup" and chat.language == "ru"
        assert [a.chat_id for a in (await session.scalars(select(Account))).all()] == [-1005]


async def test_migration_into_already_known_supergroup(sessionmaker):
    async with sessionmaker() as session:
        await ensure_chat(session, -5, "group", "Ops", "ru")
        session.add(account(-5))
        await session.commit()
        await ensure_chat(session, -1005, "supergroup", "Ops", "en")
        await migrate_chat(session, -5, -1005)
    async with sessionmaker() as session:
        assert await session.get(Chat, -5) is None
        assert (await session.get(Chat, -1005)).language == "ru"
        assert [a.chat_id for a in (await session.scalars(select(Account))).all()] == [-1005]
