"""History stays small: raw samples for RAW_DAYS, then one a day."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.storage import history
from bot.storage.engine import create_engine, create_sessionmaker
from bot.storage.history import Sample, histories_since, samples_since, thin, thin_all
from bot.storage.models import Account, BalanceSample, Chat
from tests.alerting_fixtures import START
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

RAW_DAYS = 90


def hourly(account_id: int, hours: int, balance=lambda hour: hour) -> list[BalanceSample]:
    """A sample an hour from START, the balance `balance(hour)`."""
    return [
        BalanceSample(
            account_id=account_id,
            taken_at=START + timedelta(hours=hour),
            balance=Decimal(balance(hour)),
            credit=Decimal(0),
        )
        for hour in range(hours)
    ]


async def test_thinning_keeps_raw_recent_and_daily_old(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        account = Account(chat_id=1, name="a", site="s", login="a", secret=b"x", check_interval=60)
        session.add(account)
        await session.flush()
        days = RAW_DAYS + 30
        session.add_all(hourly(account.id, days * 24, lambda hour: 100000 - hour))  # 120 days
        await session.commit()
        now = START + timedelta(days=days)
        deleted = await thin(session, now, RAW_DAYS)
        count = await session.scalar(select(func.count()).select_from(BalanceSample))
        # Raw for 90 days; one a calendar day for the 30 days before, which began at 09:00
        # and so touch 31 dates.
        assert count == RAW_DAYS * 24 + 31
        assert deleted == 30 * 24 - 31
        assert await thin(session, now, RAW_DAYS) == 0  # thinning again changes nothing
        recent = await samples_since(session, account.id, now - timedelta(days=1))
        assert len(recent) == 24 and recent[-1].balance == Decimal(100000 - days * 24 + 1)


@pytest.mark.parametrize("through", ["session", "connection"])
async def test_histories_of_many_accounts_in_one_read(sessionmaker, request, through):
    # Through a connection (the checks' studies) on SQLite: one trip to aiosqlite's thread.
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        accounts = [
            Account(chat_id=1, name=n, site="s", login=n, secret=b"x", check_interval=60)
            for n in "abc"
        ]
        session.add_all(accounts)
        await session.flush()
        a, b, c = (account.id for account in accounts)
        for account_id, hours in ((a, (3, 1, 2)), (b, (30, 5))):
            for hour in hours:
                session.add(
                    BalanceSample(
                        account_id=account_id,
                        taken_at=START + timedelta(hours=hour),
                        balance=Decimal(hour),
                        credit=Decimal(0),
                    )
                )
        await session.commit()
        reader = session if through == "session" else await session.connection()
        trips = request.getfixturevalue("trips")
        histories = await histories_since(reader, [a, b, c], START + timedelta(hours=2))
        read = len(trips)
    assert {k: [s.balance for s in v] for k, v in histories.items()} == {a: [2, 3], b: [5, 30]}
    assert histories[a][0] == Sample(START + timedelta(hours=2), Decimal(2))  # aware, exact
    if through == "connection" and sessionmaker.kw["bind"].dialect.name == "sqlite":
        assert read == 1


async def test_thinning_runs_once_a_day_for_all_replicas(sessionmaker, database_url):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        account = Account(chat_id=1, name="a", site="s", login="a", secret=b"x", check_interval=60)
        session.add(account)
        await session.flush()
        session.add_all(hourly(account.id, 48))  # two days, long ago
        await session.commit()
    other = create_engine(database_url)  # the second replica's own connections
    replicas = [sessionmaker, create_sessionmaker(other)]
    now = START + timedelta(days=RAW_DAYS + 10)
    try:
        for day in range(2):  # the first run ever, then a day that moves forward
            at = now + timedelta(days=day)
            runs = await asyncio.gather(
                *(thin_all(replica, RAW_DAYS, now=lambda at=at: at) for replica in replicas)
            )
            assert runs.count(None) == 1, runs
            assert await thin_all(sessionmaker, RAW_DAYS, now=lambda at=at: at) is None
    finally:
        await other.dispose()
    async with sessionmaker() as session:  # one sample for each of the three dates touched
        assert await session.scalar(select(func.count()).select_from(BalanceSample)) == 3


async def test_thinning_goes_account_batch_by_batch_each_keeping_its_days(
    sessionmaker, monkeypatch
):
    """A fleet's old samples are thinned a few accounts a statement (one DELETE of them all
    ran past PostgreSQL's statement bound): every account keeps one sample a day, its last."""
    monkeypatch.setattr(history, "THIN_BATCH", 2)
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en"))
        accounts = [
            Account(chat_id=1, name=n, site="s", login=n, secret=b"x", check_interval=60)
            for n in "abcde"
        ]
        session.add_all(accounts)
        await session.flush()
        for account in accounts:
            session.add_all(hourly(account.id, 3 * 24))  # three old days, from 09:00
        await session.commit()
        now = START + timedelta(days=3 + RAW_DAYS)
        assert await thin(session, now, RAW_DAYS) == 5 * (3 * 24 - 4)
        kept = await session.execute(
            select(BalanceSample.account_id, BalanceSample.balance).order_by(BalanceSample.id)
        )
    last_of_each_date = [Decimal(14), Decimal(38), Decimal(62), Decimal(71)]
    assert [balance for _, balance in kept] == last_of_each_date * 5
