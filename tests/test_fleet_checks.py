"""Two replicas' scheduled checks on one PostgreSQL database, with an injected clock: every
account checked once an interval, never twice, and a dead replica's claims taken over."""

import asyncio
import itertools
import logging
import random
import time
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.alerting import scheduling
from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import JITTER, Checks
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscUnavailable
from bot.smsc.guard import BalanceGuard
from bot.storage import stats
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from bot.storage.models import Account, Chat
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import START, NoOutbox

INTERVAL = 60
TICK = timedelta(seconds=5)


class Smsc:
    """Counts requests per login; answers at once, or when `answer` is set."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.answer = asyncio.Event()
        self.answer.set()
        self.down = False

    async def fetch_balance(self, creds: Credentials) -> Balance:
        self.requests[creds.login] += 1
        await self.answer.wait()
        if self.down:
            raise SmscUnavailable("no answer")
        return Balance(Decimal(2000), Decimal(0), "RUB")


class CountingMonitor(Monitor):
    """Notes when each account's outcome is written, whichever replica writes it."""

    def __init__(self, clock, written) -> None:
        super().__init__(TelegramRenderer(create_i18n()), now=clock)
        self.clock, self.written = clock, written
        self.count = 0  # outcomes this replica wrote

    async def record(self, session, outcomes, chats=None) -> None:
        for account, _outcome in outcomes:
            self.written[account.id].append(self.clock())
        self.count += len(outcomes)
        await super().record(session, outcomes, chats)


@pytest.fixture
def written():
    return defaultdict(list)


@pytest.fixture
async def database(postgres_url):
    engine = create_engine(postgres_url)
    await migrate(engine)
    yield create_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture
def monitors(clock, written):
    return [CountingMonitor(clock, written) for _ in range(2)]


@pytest.fixture
async def replicas(postgres_url, database, box, clock, monitors):
    """`replicas(smsc, smsc)`: two processes, each with its own engine, guard and checks."""
    engines = []

    def start(*fetchers: Smsc) -> list[Checks]:
        engines.extend(create_engine(postgres_url) for _ in fetchers)
        return [
            Checks(
                create_sessionmaker(engine),
                BalanceGuard(fetcher, cache_seconds=0, now=clock),
                box,
                monitor,
                NoOutbox(),
                now=clock,
                rng=random.Random(seed),
            )
            for seed, (engine, fetcher, monitor) in enumerate(
                zip(engines, fetchers, monitors, strict=True)
            )
        ]

    yield start
    for engine in engines:
        await engine.dispose()


async def add_accounts(sessionmaker, box, logins: int, chats: int) -> dict[int, str]:
    """Every chat watches every login, due over the first minute; login of each account."""
    async with sessionmaker() as session:
        session.add_all(Chat(id=-chat, type="supergroup", language="en") for chat in range(chats))
        accounts = [
            Account(
                chat_id=-chat,
                name=f"login{login}",
                site="https://smsc.ru",
                login=f"login{login}",
                secret=box.encrypt("pw"),
                credentials_key=box.keyed_hash("https://smsc.ru", f"login{login}", "pw"),
                check_interval=INTERVAL,
                threshold=Decimal(1000),
                next_check_at=START + timedelta(seconds=login % INTERVAL),
            )
            for chat in range(chats)
            for login in range(logins)
        ]
        session.add_all(accounts)
        await session.commit()
    return {account.id: account.login for account in accounts}


async def test_two_replicas_check_every_account_once_an_interval(
    replicas, monitors, database, box, clock, written, monkeypatch
):
    logins = await add_accounts(database, box, logins=50, chats=10)
    smsc = Smsc()
    both = replicas(smsc, smsc)
    # Small claims, so that both replicas take work in every look, side by side, while the
    # checks of the look before are still being written.
    monkeypatch.setattr(scheduling, "BATCH", 4)
    end = START + timedelta(minutes=3)
    while clock.now < end:
        for _ in range(3):
            await asyncio.gather(*(replica.dispatch() for replica in both))
        await asyncio.gather(*(replica.drain() for replica in both))
        clock.advance(seconds=TICK.seconds)
    assert set(written) == set(logins)  # all 500
    assert all(monitor.count > 200 for monitor in monitors)  # both took a good share
    for account, times in written.items():
        # Checked within a look of being due, then once an interval: never twice in one,
        # never an interval skipped.
        due = START + timedelta(seconds=int(logins[account][5:]) % INTERVAL)
        assert due <= times[0] < due + TICK
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(INTERVAL * (1 - JITTER) <= gap.total_seconds() < INTERVAL + 10 for gap in gaps)
        assert end - times[-1] < timedelta(seconds=INTERVAL + 10)
        # One request per check: no login asked for by both replicas.
        assert smsc.requests[logins[account]] == len(times)


async def test_a_dead_replicas_claims_are_taken_over_after_the_lease(
    replicas, database, box, clock, written
):
    await add_accounts(database, box, logins=5, chats=2)
    hung, alive = Smsc(), Smsc()
    hung.answer.clear()  # the first replica claims, asks, and never hears back
    first, second = replicas(hung, alive)
    clock.advance(seconds=INTERVAL)  # all due
    assert await first.dispatch() == 5
    await asyncio.sleep(0.01)
    clock.advance(seconds=59)
    assert await second.dispatch() == 0  # the claim still holds
    clock.advance(seconds=2)
    assert await second.dispatch() == 5  # its lease ran out: taken over
    await second.drain()
    assert alive.requests.total() == 5 and len(written) == 10
    async with database() as session:
        accounts = (await session.scalars(select(Account))).all()
    assert {(account.last_balance, account.lease_until) for account in accounts} == {(2000, None)}
    # The first replica was only paused, and its answers come after all: ignored.
    hung.down = True
    hung.answer.set()
    await first.drain()
    assert all(len(times) == 1 for times in written.values())
    async with database() as session:
        accounts = (await session.scalars(select(Account))).all()
    assert {(account.failures, account.last_balance) for account in accounts} == {(0, 2000)}


async def test_an_answer_after_the_lease_was_claimed_again_is_not_written(
    replicas, database, box, clock, written
):
    await add_accounts(database, box, logins=3, chats=2)
    late, taking_over = Smsc(), Smsc()
    late.answer.clear()
    taking_over.answer.clear()
    first, second = replicas(late, taking_over)
    clock.advance(seconds=INTERVAL)  # all due
    assert await first.dispatch() == 3
    clock.advance(seconds=61)
    assert await second.dispatch() == 3
    await asyncio.sleep(0.01)
    late.answer.set()  # the first answers now that the second holds the accounts
    await first.drain()
    assert written == {}
    taking_over.answer.set()
    await second.drain()
    assert len(written) == 6 and all(len(times) == 1 for times in written.values())


async def six_logins_due(replicas, database, box, clock, monkeypatch, *, chats):
    """Six logins' accounts in `chats` chats, all due, claimed three logins at a time: the
    first replica, and the SMSC it asks."""
    monkeypatch.setattr(scheduling, "CLAIM_PART", 3)
    await add_accounts(database, box, logins=6, chats=chats)
    smsc = Smsc()
    replica, _other = replicas(smsc, Smsc())
    clock.advance(seconds=INTERVAL)  # all due
    return replica, smsc


async def test_a_look_claims_on_past_logins_watched_by_many_chats(
    replicas, database, box, clock, monkeypatch
):
    # A claim picks its logins among the first due accounts only (a few for each login it may
    # take): finding fewer logins there than it asked for is not the end of what is due.
    replica, smsc = await six_logins_due(replicas, database, box, clock, monkeypatch, chats=30)
    assert await replica.dispatch() == 6
    await replica.drain()
    assert smsc.requests == Counter({f"login{n}": 1 for n in range(6)})


async def test_checks_held_up_by_a_lock_go_on_once_it_is_let_go(
    postgres_url, database, box, clock, written, monitors, caplog
):
    # An account row locked elsewhere and never let go held the claim, and every check after
    # it, for ever: alerts stopped with no line in the log.
    await add_accounts(database, box, logins=3, chats=1)
    engine = create_engine(postgres_url, statement_timeout=0.5)
    smsc = Smsc()
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    checks = Checks(create_sessionmaker(engine), guard, box, monitors[0], NoOutbox(), now=clock)
    clock.advance(seconds=INTERVAL)  # all due
    try:
        async with database() as psql:  # an admin's session left in a transaction
            await psql.execute(select(Account).where(Account.login == "login1").with_for_update())
            with caplog.at_level(logging.WARNING):
                for _ in range(2):  # each look ends at the bound, and the next tries again
                    started = time.monotonic()
                    assert await asyncio.wait_for(checks.dispatch(), 10) == 0
                    assert time.monotonic() - started < 3
        [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]  # said once
        assert "claiming due checks failed" in line.getMessage()
        assert "ran past 0.5 s" in line.getMessage() and not line.exc_info
        assert smsc.requests.total() == 0 and written == {}
        # Let go: the next look claims them all, and each is checked and written once.
        assert await checks.dispatch() == 3
        await checks.drain()
        assert smsc.requests == Counter({f"login{n}": 1 for n in range(3)})
        assert [len(times) for times in written.values()] == [1, 1, 1]
    finally:
        await engine.dispose()


async def test_a_replica_that_lost_a_claim_to_another_looks_again_at_once(
    replicas, database, box, clock, monkeypatch
):
    # Both replicas read the same first due logins: the one whose claim waited for the other's
    # came back with nothing, and looked again a whole second later, when the other had
    # claimed the rest of the sweep and checked it alone.
    replica, smsc = await six_logins_due(replicas, database, box, clock, monkeypatch, chats=1)
    now = clock()
    values = {"now": now, "lease_until": now + timedelta(minutes=1), "limit": 3, "window": 60}
    async with database() as other:  # the other replica's claim of the first three logins
        await other.execute(stats.claim_due("postgresql"), values)
        losing = asyncio.create_task(replica.dispatch())
        await asyncio.sleep(0.3)  # waiting for the rows the other holds
        await other.commit()
    assert await losing == 0
    asked, fetch = asyncio.Event(), smsc.fetch_balance

    async def noted(creds):
        if smsc.requests.total() == 2:
            asked.set()  # the third request
        return await fetch(creds)

    smsc.fetch_balance = noted
    replica.start()
    try:
        started = time.monotonic()
        await asyncio.wait_for(asked.wait(), 3)
        assert time.monotonic() - started < 0.5
    finally:
        replica.stop()
        await replica.drain()
    assert smsc.requests == Counter({f"login{n}": 1 for n in range(3, 6)})


async def test_a_look_that_claimed_what_was_due_waits_for_the_next_tick(
    replicas, database, box, clock
):
    # Only a claim another replica may have cut short brings the next look forward: one that
    # took what was due does not, or a bot with checks falling due all the time (thousands of
    # accounts) would claim every 50 ms instead of once a second.
    await add_accounts(database, box, logins=2, chats=1)
    smsc = Smsc()
    replica, _other = replicas(smsc, Smsc())
    clock.advance(seconds=INTERVAL)  # all due
    assert await replica.dispatch() == 2
    dispatch, looks = replica.dispatch, []

    async def counted():
        looks.append(time.monotonic())
        return await dispatch()

    replica.dispatch = counted
    replica.start()
    try:
        await asyncio.sleep(scheduling.DISPATCH_EVERY * 0.6)
    finally:
        replica.stop()
        await replica.drain()
    assert looks == []
