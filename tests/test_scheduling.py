"""Scheduled checks with an injected clock: who is checked when, and at what cost to SMSC."""

import asyncio
import logging
import random
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update

from bot.alerting import scheduling
from bot.alerting.accounts import AccountService
from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import Checks
from bot.smsc.guard import BalanceGuard
from bot.smsc.windows import MemoryGuardState
from bot.storage.chats import ensure_chat
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, AccountState, BalanceSample, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import (
    START,
    Counted,
    NoOutbox,
    Smsc,
    add,
    looks_hold_their_connection,
    refusing,
    run,
)
from tests.guard_fixtures import StateOutage
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


@pytest.fixture
def smsc():
    return Smsc()


async def test_one_login_watched_by_many_chats_costs_one_request(checks, smsc, sessionmaker, box):
    for chat_id in (-1, -2, -3):
        await add(sessionmaker, box, chat_id, "shop")
    await add(sessionmaker, box, -1, "other")
    assert await run(checks) == 2
    assert sorted(smsc.requests) == ["other", "shop"]
    async with sessionmaker() as session:
        balances = (await session.scalars(select(Account.last_balance))).all()
        samples = await session.scalar(select(func.count()).select_from(BalanceSample))
        low = (await session.scalars(select(Notification.chat_id))).all()
    assert sorted(balances) == [700, 1500, 1500, 1500]
    assert samples == 4
    assert low == [-1]  # "other" is under its threshold: one alert, to its chat


async def test_the_outbox_is_woken_only_when_checks_queued_something(
    sessionmaker, smsc, box, clock
):
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    outbox = NoOutbox()
    checks = Checks(sessionmaker, guard, box, monitor, outbox, now=clock, rng=random.Random(1))
    await add(sessionmaker, box, -1, "shop", interval=60)
    await run(checks)  # 1500 over 1000: nothing to tell
    assert outbox.woken == 0
    smsc.balances["shop"] = Decimal(10)
    clock.advance(minutes=2)
    await run(checks)  # under the threshold: an alert waits in the outbox
    assert outbox.woken == 1


async def test_a_password_is_decrypted_once_for_every_later_check_and_balance(
    sessionmaker, smsc, box, clock, monkeypatch
):
    """The guard remembers the credentials under their keyed hash: later checks, and a
    /balance in the chat, find them there. A new password is a new key, decrypted anew."""
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    checks = Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, rng=random.Random(1))
    await add(sessionmaker, box, -1, "shop")
    decrypted = []
    decrypt = SecretBox.decrypt
    monkeypatch.setattr(
        SecretBox, "decrypt", lambda self, token: decrypted.append(token) or decrypt(self, token)
    )
    await run(checks)
    clock.advance(minutes=2)
    await run(checks)
    async with sessionmaker() as session:
        chat = await ensure_chat(session, -1, "supergroup", None, "en")
        service = AccountService(session, box, guard, monitor, 60, chat=chat)
        [(_account, answer)] = await service.balances(await service.list(-1))
    assert answer.balance.balance == 1500
    assert smsc.requests == ["shop"] * 3 and len(decrypted) == 1

    smsc.passwords["shop"] = "new"
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        account.secret = box.encrypt("new")
        account.credentials_key = box.keyed_hash("https://smsc.ru", "shop", "new")
        account.next_check_at = clock()
        await session.commit()
    await run(checks)
    async with sessionmaker() as session:
        assert (await session.scalar(select(Account))).state == AccountState.OK
    assert smsc.requests == ["shop"] * 4 and len(decrypted) == 2


async def test_each_account_is_checked_at_its_interval(checks, smsc, sessionmaker, box, clock):
    await add(sessionmaker, box, -1, "shop", interval=60)
    await add(sessionmaker, box, -2, "other", interval=300)
    for _ in range(60):  # ten minutes, a look every 10 s
        await run(checks)
        clock.advance(seconds=10)
    assert 9 <= smsc.requests.count("shop") <= 11
    assert 2 <= smsc.requests.count("other") <= 3


async def test_checks_keep_their_interval_after_the_clock_steps_back(
    checks, smsc, sessionmaker, box, clock, caplog
):
    # The bot ran with its clock a day ahead (a VM's, or an RTC kept in local time) until NTP
    # stepped it back: the next check was set a day ahead of the true time.
    await add(sessionmaker, box, -1, "shop", interval=60)
    clock.advance(days=1)
    assert await run(checks) == 1
    clock.advance(days=-1)
    await run(checks)
    assert "clock stepped back: checks set too far ahead moved accounts=1" in caplog.text
    assert checks.last_completed_at <= clock.now  # /healthz counts from a true time
    for _ in range(60):  # ten minutes, a look every 10 s
        clock.advance(seconds=10)
        await run(checks)
    assert 9 <= len(smsc.requests[1:]) <= 11


async def test_one_logins_accounts_stay_due_together_and_logins_drift_apart(
    checks, smsc, sessionmaker, box
):
    for chat_id in (-1, -2):
        await add(sessionmaker, box, chat_id, "shop")
        await add(sessionmaker, box, chat_id, "other")
    await add(sessionmaker, box, -3, "shop", interval=300)
    await run(checks)
    async with sessionmaker() as session:
        rows = (
            await session.execute(
                select(Account.login, Account.check_interval, Account.next_check_at)
            )
        ).all()
    due = defaultdict(set)
    for login, interval, next_check in rows:
        due[login, interval].add(next_check)
    # One answer serves a login's accounts: checked together, they fall due together again.
    assert all(len(times) == 1 for times in due.values()), due
    # The jitter keeps logins apart, and each interval is kept.
    (shop,), (other,), (shop_later,) = due["shop", 60], due["other", 60], due["shop", 300]
    assert shop != other
    assert (shop_later - shop).total_seconds() > 200


async def test_nothing_due_nothing_asked(checks, smsc, sessionmaker, box, clock):
    await add(sessionmaker, box, -1, "shop")
    await run(checks)
    clock.advance(seconds=30)
    assert await run(checks) == 0
    assert smsc.requests == ["shop"]


async def test_refused_credentials_are_not_checked_again(checks, smsc, sessionmaker, box, clock):
    await add(sessionmaker, box, -1, "shop", password="wrong")
    for _ in range(10):
        await run(checks)
        clock.advance(minutes=5)
    assert smsc.requests == ["shop"]
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        [alert] = (await session.scalars(select(Notification))).all()
    assert account.state == AccountState.CANT_CHECK and alert.kind == "cant_check"


async def test_a_secret_that_does_not_decrypt_fails_its_account_alone(
    checks, smsc, sessionmaker, box, clock, caplog
):
    # A row written by hand, or restored from another database: its chat is told once it
    # can't be checked; the other credentials claimed with it are checked as ever.
    await add(sessionmaker, SecretBox(Fernet.generate_key()), -1, "shop", password="hunter2")
    await add(sessionmaker, box, -2, "other")
    for _ in range(3):
        await run(checks)
        clock.advance(minutes=5)
    assert smsc.requests == ["other"] * 3
    async with sessionmaker() as session:
        shop = await session.scalar(select(Account).where(Account.name == "shop"))
        [told] = await session.scalars(select(Notification).where(Notification.chat_id == -1))
    assert shop.state == AccountState.CANT_CHECK and told.kind == "cant_check"
    assert "cannot decrypt the password or API key" in told.text and "/add" in told.text
    assert "hunter2" not in caplog.text


async def test_inactive_chats_are_not_checked(checks, smsc, sessionmaker, box):
    await add(sessionmaker, box, -1, "shop", active=False)
    assert await run(checks) == 0
    assert smsc.requests == []


async def test_a_look_cancelled_at_shutdown_ends_quietly(checks, smsc, sessionmaker, box):
    # The scheduler cancels a job under way when it shuts down, and logs any exception.
    await add(sessionmaker, box, -1, "shop")
    look = asyncio.create_task(checks.dispatch())
    await asyncio.sleep(0)  # now waiting for the database
    look.cancel()
    assert await look == 0
    await checks.drain()
    assert smsc.requests == []


async def test_the_looks_for_due_checks_keep_to_one_connection_and_find_what_is_due(
    checks, engine, smsc, sessionmaker, box, monkeypatch
):
    # Through the pool, each look on SQLite took a connection and five trips to aiosqlite's
    # thread: four looks a second kept 1.3 % of a core busy on a bot with nothing due.
    monkeypatch.setattr(scheduling, "DISPATCH_EVERY", 0.01)
    looks = Counted(monkeypatch, checks, "dispatch")
    checks.start()
    try:
        assert await looks_hold_their_connection(engine, looks)
        await add(sessionmaker, box, -1, "shop")
        await asyncio.wait_for(smsc.asked.wait(), 10)
    finally:
        checks.stop()
        await checks.drain()
    assert smsc.requests == ["shop"]
    assert engine.sync_engine.pool.checkedout() == 0  # the looks' connection is back


async def test_a_sweep_larger_than_its_room_is_claimed_on_as_checks_end(
    checks, smsc, sessionmaker, box, monkeypatch
):
    # Looked for again only at the next tick, the rest of a large sweep waited up to
    # DISPATCH_EVERY for its room, and SMSC's slots stood idle meanwhile.
    monkeypatch.setattr(scheduling, "DISPATCH_EVERY", 60)
    monkeypatch.setattr(scheduling, "BATCH", 4)
    monkeypatch.setattr(scheduling, "CLAIM_PART", 2)
    logins = [f"login{n}" for n in range(10)]
    for login in logins:
        smsc.balances[login], smsc.passwords[login] = Decimal(1500), "pw"
        await add(sessionmaker, box, -1, login)
    checks.start()  # its first look is a minute away
    try:
        assert await checks.dispatch() == 4
        async with asyncio.timeout(10):
            while len(smsc.requests) < len(logins):
                smsc.asked.clear()
                await smsc.asked.wait()
    finally:
        checks.stop()
        await checks.drain()
    assert sorted(smsc.requests) == sorted(logins)


async def test_a_check_due_before_the_next_tick_starts_when_due(
    checks, smsc, sessionmaker, box, clock, monkeypatch
):
    # A look every DISPATCH_EVERY alone started a sweep up to one look after it fell due.
    monkeypatch.setattr(scheduling, "DISPATCH_EVERY", 60)
    await add(sessionmaker, box, -1, "shop")
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        account.next_check_at = START + timedelta(seconds=0.3)
        await session.commit()
    assert await checks.dispatch() == 0  # not due yet; the look saw when it will be
    checks.start()
    try:
        clock.advance(seconds=0.3)
        await asyncio.wait_for(smsc.asked.wait(), 10)
    finally:
        checks.stop()
        await checks.drain()
    assert smsc.requests == ["shop"]


async def test_no_connection_to_look_with_is_said_once_and_looked_for_again(
    checks, smsc, sessionmaker, box, monkeypatch, caplog
):
    monkeypatch.setattr(scheduling, "DISPATCH_EVERY", 0.01)
    monkeypatch.setattr(scheduling.direct, "held", refusing(scheduling.direct.held, 5))
    await add(sessionmaker, box, -1, "shop")
    checks.start()
    try:
        await asyncio.wait_for(smsc.asked.wait(), 10)
    finally:
        checks.stop()
        await checks.drain()
    assert smsc.requests == ["shop"]
    assert caplog.text.count("claiming due checks failed") == 1
    assert "Traceback" not in caplog.text


async def test_a_claim_under_way_at_shutdown_keeps_the_looks_connection_until_it_ends(
    sessionmaker, engine, smsc, box, clock, monkeypatch
):
    # On SQLite a claim runs on the looks' held connection. Given back to the pool while the
    # claim still waited for its turn to write, the connection then ran the claim in whatever
    # state the pool's next user left it, and its lease was never committed.
    monkeypatch.setattr(scheduling, "DISPATCH_EVERY", 0.01)
    writes = asyncio.Lock()
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    checks = Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, writes=writes)
    claiming, lease_due = asyncio.Event(), scheduling.lease_due

    async def noted(*args, **kwargs):
        claiming.set()
        return await lease_due(*args, **kwargs)

    monkeypatch.setattr(scheduling, "lease_due", noted)
    await add(sessionmaker, box, -1, "shop")
    async with writes:  # the claim waits for its turn
        checks.start()
        await asyncio.wait_for(claiming.wait(), 10)
        checks.stop()
        await asyncio.sleep(0.05)
        assert engine.sync_engine.pool.checkedout() == 1  # still the claim's
    await checks.drain()
    assert engine.sync_engine.pool.checkedout() == 0
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
    assert account.lease_until is not None  # claimed, and left to run out
    assert smsc.requests == []  # nothing started once stopped


async def test_checks_meeting_a_guard_state_outage_say_it_once_and_its_end_once(
    sessionmaker, smsc, box, clock, caplog
):
    # Redis, where replicas keep SMSC's limits, stopped for a while: every login due waits and
    # is tried again a few seconds later. The log says so once, not for each login each time.
    state = StateOutage()
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock, state=state)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    checks = Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, rng=random.Random(1))
    logins = [f"login{n}" for n in range(20)]
    for login in logins:
        smsc.balances[login], smsc.passwords[login] = Decimal(2000), "pw"
        await add(sessionmaker, box, -1, login, interval=600)
    state.down = True
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            assert await run(checks) == 20
            clock.advance(seconds=11)  # their retry: at most 5 s, jittered by 5 s more
        state.down = False
        assert await run(checks) == 20
    assert sorted(smsc.requests) == sorted(logins)
    told = [(r.name, r.levelname) for r in caplog.records if r.name.startswith("bot.")]
    assert told == [("bot.smsc.guard", "WARNING"), ("bot.smsc.guard", "INFO")]


class SlowState(MemoryGuardState):
    """The guard's state a round trip away, as Redis is: 0.2 s before and after a request."""

    async def begin(self, *args, **kwargs):
        await asyncio.sleep(0.2)
        return await super().begin(*args, **kwargs)

    async def finish(self, *args, **kwargs):
        await asyncio.sleep(0.2)
        await super().finish(*args, **kwargs)


class Timed(Smsc):
    """Answers in 0.2 s; notes when each request started and the most at once."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[float] = []
        self.flying = self.most = 0

    async def fetch_balance(self, creds):
        self.started.append(time.monotonic())
        self.flying += 1
        self.most = max(self.most, self.flying)
        try:
            await asyncio.sleep(0.2)
            return await super().fetch_balance(creds)
        finally:
            self.flying -= 1


async def test_smscs_slots_are_not_held_through_the_guards_round_trips(
    sessionmaker, box, monitor, clock
):
    # With the guard's state in Redis, a slot held through the round trips before and after
    # the request left SMSC a quarter idle: 50 slots, ≈ 36 requests in flight.
    smsc = Timed()
    smsc.balances |= {f"l{n}": Decimal(100) for n in range(4)}
    smsc.passwords |= {f"l{n}": "pw" for n in range(4)}
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock, state=SlowState(time.monotonic))
    checks = Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, concurrency=2)
    for n in range(4):
        await add(sessionmaker, box, -1 - n, f"l{n}")
    async with sessionmaker() as session:  # seen to work: checked side by side
        await session.execute(update(Account).values(state=AccountState.OK))
        await session.commit()
    started = time.monotonic()
    assert await checks.dispatch() == 4
    await checks.drain()
    assert smsc.most == 2  # SMSC's requests at once are still the concurrency
    # The third went as soon as a slot's request was over (0.2 s of state, 0.2 of request),
    # not after the first two's records too (0.8 s).
    assert sorted(smsc.started)[2] - started < 0.6
