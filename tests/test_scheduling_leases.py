"""The scheduled checks under leases (bot.alerting.scheduling): what a restart does with checks
nobody made or another process holds (Checks.prepare, bot.alerting.startup), and checks whose
lease ran short or was taken over, or whose account was removed meanwhile."""

import asyncio
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import Checks
from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, BalanceSample, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import NoOutbox, SlowSmsc, Smsc, add, run
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


@pytest.fixture
def smsc():
    return Smsc()


@pytest.fixture
def slow_checks(sessionmaker, box, clock):
    smsc = SlowSmsc()
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    checks = Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, rng=random.Random(1))
    return checks, smsc


async def test_restart_spreads_overdue_checks(checks, sessionmaker, box, clock):
    for chat_id in range(-1, -41, -1):
        await add(sessionmaker, box, chat_id, "shop", password="pw", interval=900)
    clock.advance(hours=3)  # the bot was down
    await checks.prepare()
    async with sessionmaker() as session:
        due = sorted((await session.scalars(select(Account.next_check_at))).all())
    assert all(clock.now <= t <= clock.now + timedelta(minutes=5) for t in due)
    assert due[-1] - due[0] > timedelta(minutes=3)  # spread out, not one burst


async def test_restart_brings_back_checks_set_further_ahead_than_their_interval(
    checks, sessionmaker, box, clock
):
    # Set by a clock that ran a day ahead until NTP stepped it back, the bot restarted since.
    for chat_id in range(-1, -41, -1):
        await add(sessionmaker, box, chat_id, "shop", interval=900)
    await add(sessionmaker, box, -41, "in time", interval=900)
    in_time = clock.now + timedelta(seconds=940)  # within the interval and its jitter
    async with sessionmaker() as session:
        for account in await session.scalars(select(Account)):
            ahead = account.name == "in time"
            account.next_check_at = in_time if ahead else clock.now + timedelta(days=1)
        await session.commit()
    await checks.prepare()
    async with sessionmaker() as session:
        due = dict((await session.execute(select(Account.chat_id, Account.next_check_at))).all())
    assert due.pop(-41) == in_time
    times = sorted(due.values())
    assert all(clock.now <= t <= clock.now + timedelta(minutes=5) for t in times)
    assert times[-1] - times[0] > timedelta(minutes=3)  # spread out, not one burst


async def test_prepare_fills_missing_credential_keys(checks, sessionmaker, box):
    await add(sessionmaker, box, -1, "shop")
    async with sessionmaker() as session:
        (await session.scalar(select(Account))).credentials_key = None
        await session.commit()
    await checks.prepare()
    async with sessionmaker() as session:
        key = (await session.scalar(select(Account))).credentials_key
    assert key == box.keyed_hash("https://smsc.ru", "shop", "pw")


async def test_prepare_keys_a_secret_that_does_not_decrypt_and_its_chat_is_told(
    checks, smsc, sessionmaker, box
):
    # A row written by hand: no key, and a secret of another key. The start goes on, and
    # that account's chat hears it can't be checked.
    await add(sessionmaker, SecretBox(Fernet.generate_key()), -1, "shop")
    await add(sessionmaker, box, -2, "other")
    async with sessionmaker() as session:
        (await session.scalar(select(Account).where(Account.name == "shop"))).credentials_key = None
        await session.commit()
    await checks.prepare()
    await run(checks)
    assert smsc.requests == ["other"]
    async with sessionmaker() as session:
        [told] = await session.scalars(select(Notification).where(Notification.chat_id == -1))
    assert told.kind == "cant_check"


async def test_prepare_leaves_accounts_that_need_nothing(checks, sessionmaker, box, clock):
    await add(sessionmaker, box, -1, "shop", interval=2 * 3600)
    async with sessionmaker() as session:
        (await session.scalar(select(Account))).next_check_at = clock.now + timedelta(hours=2)
        await session.commit()
    await checks.prepare()
    async with sessionmaker() as session:
        assert await session.scalar(select(Account.next_check_at)) == clock.now + timedelta(hours=2)


async def test_restart_leaves_claimed_and_just_due_checks_where_they_are(
    checks, sessionmaker, box, clock
):
    # Other replicas run: one holds a claim, another account just fell due. Only the
    # account nobody checked for hours is spread out.
    for name in ("claimed", "just due", "forgotten"):
        await add(sessionmaker, box, -1, name, interval=900)
    claimed_until = clock.now + timedelta(seconds=40)
    async with sessionmaker() as session:
        accounts = {a.name: a for a in await session.scalars(select(Account))}
        accounts["claimed"].next_check_at = clock.now - timedelta(hours=3)
        accounts["claimed"].lease_until = claimed_until
        accounts["just due"].next_check_at = clock.now - timedelta(seconds=20)
        accounts["forgotten"].next_check_at = clock.now - timedelta(hours=3)
        await session.commit()
    await checks.prepare()
    async with sessionmaker() as session:
        after = {a.name: a for a in await session.scalars(select(Account))}
    assert after["claimed"].next_check_at == clock.now - timedelta(hours=3)
    assert after["claimed"].lease_until == claimed_until
    assert after["just due"].next_check_at == clock.now - timedelta(seconds=20)
    assert clock.now <= after["forgotten"].next_check_at <= clock.now + timedelta(minutes=5)


async def test_an_account_removed_during_its_check_stays_removed(slow_checks, sessionmaker, box):
    checks, smsc = slow_checks
    await add(sessionmaker, box, -1, "shop")
    await add(sessionmaker, box, -1, "other")
    await checks.dispatch()
    await asyncio.sleep(0.01)
    async with sessionmaker() as session:
        await session.delete(await session.scalar(select(Account).where(Account.name == "shop")))
        await session.commit()
    smsc.answer.set()
    await checks.drain()
    async with sessionmaker() as session:
        accounts = (await session.scalars(select(Account))).all()
        samples = (await session.scalars(select(BalanceSample.account_id))).all()
    assert [(a.name, a.last_balance) for a in accounts] == [("other", 700)]
    assert samples == [accounts[0].id]


async def test_a_check_that_waited_out_half_its_lease_is_left_for_later(
    sessionmaker, box, clock, caplog
):
    smsc = SlowSmsc()
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    checks = Checks(
        sessionmaker, guard, box, monitor, NoOutbox(), now=clock, concurrency=1, lease_seconds=60
    )
    smsc.balances["third"], smsc.passwords["third"] = Decimal(300), "pw"
    for name in ("shop", "other", "third"):
        await add(sessionmaker, box, -1, name)
    assert await checks.dispatch() == 3
    # One check asks SMSC, one waits for SMSC's one slot, the third for its turn (two at once).
    await asyncio.sleep(0.01)
    clock.advance(seconds=31)
    smsc.answer.set()
    await checks.drain()
    # The third would have begun late enough to outlast its lease: not asked now ...
    assert sorted(smsc.requests) == ["other", "shop"]
    assert await run(checks) == 0  # ... nor before its lease runs out
    assert "checks ran out of lease before their turn claims=1" in caplog.text
    clock.advance(seconds=30)
    assert await run(checks) == 1
    assert sorted(smsc.requests) == ["other", "shop", "third"]
    async with sessionmaker() as session:
        balances = sorted((await session.scalars(select(Account.last_balance))).all())
    assert balances == [300, 700, 1500]


async def test_an_answer_after_the_lease_was_taken_again_is_not_written(sessionmaker, box, clock):
    # Two processes on one database: the first answers after its lease ran out and the second
    # claimed the account; only the second's outcome counts.
    first_smsc, second_smsc = SlowSmsc(), SlowSmsc()
    second_smsc.balances["shop"] = Decimal(900)
    replicas = [
        Checks(
            sessionmaker,
            BalanceGuard(smsc, cache_seconds=0, now=clock),
            box,
            Monitor(TelegramRenderer(create_i18n()), now=clock),
            NoOutbox(),
            now=clock,
        )
        for smsc in (first_smsc, second_smsc)
    ]
    first, second = replicas
    await add(sessionmaker, box, -1, "shop")
    assert await first.dispatch() == 1
    clock.advance(seconds=30)
    assert await second.dispatch() == 0  # claimed by the first
    clock.advance(seconds=31)
    assert await second.dispatch() == 1  # the first's lease ran out
    await asyncio.sleep(0.01)
    first_smsc.answer.set()
    await first.drain()
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        assert account.last_balance is None and account.lease_until is not None
    second_smsc.answer.set()
    await second.drain()
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        samples = (await session.scalars(select(BalanceSample.balance))).all()
        alerts = (await session.scalars(select(Notification.kind))).all()
    assert account.last_balance == 900 and account.lease_until is None
    assert samples == [900] and alerts == ["low"]
    assert account.next_check_at > clock.now + timedelta(seconds=50)
