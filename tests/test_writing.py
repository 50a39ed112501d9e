"""The checks' outcomes written a batch at a time (bot.alerting.writing), through the checks."""

import asyncio
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bot.alerting import writing
from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import Checks
from bot.smsc.guard import BalanceGuard
from bot.storage.models import Account, BalanceSample
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import LOGINS, Counted, NoOutbox, SlowSmsc, Smsc, add, run
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


@pytest.fixture
def smsc():
    return Smsc()


def checks_on(sessionmaker, smsc, box, clock, monitor_class=Monitor):
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = monitor_class(TelegramRenderer(create_i18n()), now=clock)
    return Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, rng=random.Random(1))


async def test_checks_answered_together_are_all_recorded(sessionmaker, box, clock):
    smsc = SlowSmsc()
    checks = checks_on(sessionmaker, smsc, box, clock)
    for i in range(LOGINS):
        await add(sessionmaker, box, -(i % 3) - 1, f"login{i}")
    assert await checks.dispatch() == LOGINS
    await asyncio.sleep(0.01)  # every check is now waiting for SMSC
    smsc.answer.set()
    await checks.drain()
    async with sessionmaker() as session:
        checked = await session.scalar(
            select(func.count()).select_from(Account).where(Account.last_balance == 2000)
        )
        samples = await session.scalar(select(func.count()).select_from(BalanceSample))
        due = await session.scalar(select(func.min(Account.next_check_at)))
    assert checked == LOGINS and samples == LOGINS
    assert due > clock.now + timedelta(seconds=50)  # each comes back at its interval
    assert await run(checks) == 0


async def test_checks_ending_a_little_apart_are_written_together(
    smsc, sessionmaker, box, clock, monkeypatch
):
    # Written as each ended, checks whose answers came spread out (SMSC far away) made a write
    # each: ≈ 20 % more CPU an account in a sweep at 200 ms a request.
    monkeypatch.setattr(writing, "WRITE_LINGER", 0.3)
    logins = [f"login{i}" for i in range(5)]
    answered = smsc.fetch_balance

    async def spread(creds):
        await asyncio.sleep(0.01 * logins.index(creds.login))  # 10 ms apart
        return await answered(creds)

    monkeypatch.setattr(smsc, "fetch_balance", spread)
    for login in logins:
        smsc.balances[login], smsc.passwords[login] = Decimal(1500), "pw"
        await add(sessionmaker, box, -1, login)
    writes = Counted(monkeypatch, writing, "write_outcomes")
    assert await run(checks_on(sessionmaker, smsc, box, clock)) == len(logins)
    assert writes.calls == 1
    async with sessionmaker() as session:
        checked = await session.scalar(
            select(func.count()).select_from(Account).where(Account.last_balance == 1500)
        )
    assert checked == len(logins)


class BrokenMonitor(Monitor):
    async def record(self, session, outcomes) -> None:
        raise RuntimeError("disk full")


async def test_a_failed_write_postpones_the_checks(smsc, sessionmaker, box, clock, caplog):
    checks = checks_on(sessionmaker, smsc, box, clock, BrokenMonitor)
    await add(sessionmaker, box, -1, "shop")
    await add(sessionmaker, box, -2, "other")
    assert await run(checks) == 2
    assert "writing checks failed" in caplog.text
    clock.advance(seconds=10)
    assert await run(checks) == 0  # not again every second: at the usual interval
    clock.advance(minutes=2)
    assert await run(checks) == 2
