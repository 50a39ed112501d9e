"""The SMSC guard shared by replicas through a real Redis: two `BalanceGuard`s ("two replicas",
each with a Redis client of its own) in front of one fake SMSC that notes every request.
Windows and pauses are shortened to a second or so; the times are Redis's and the real ones."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Connection, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.fleet.limits import RedisGuardState
from bot.smsc.check_errors import CheckError, check_error
from bot.smsc.client import (
    Balance,
    Credentials,
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.guard import BalanceGuard
from bot.smsc.refusals import (
    AskerPaused,
    AuthChecksPaused,
    CredentialsRejected,
    GuardUnavailable,
    LoginPaused,
    SitePaused,
)
from bot.smsc.windows import Allowance

KEY = b"fleet-test-key"
ALICE = Credentials("smsc.ru", "alice", "alice-pw")
BOB = Credentials("smsc.ru", "bob", "bob-pw")
KZ = Credentials("smsc.kz", "alice", "alice-pw")
BALANCE = Balance(Decimal("84.75"), Decimal(0), "RUB")
ALLOWANCE = Allowance(max_per_minute=10, auth_failures_per_site=3, auth_failures_per_asker=1)


@dataclass
class Request:
    creds: Credentials
    start: float  # time.monotonic()
    end: float = 0.0


class Smsc:
    """The fake SMSC both replicas ask: answers BALANCE after `delay`, or raises `errors`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.errors: dict[Credentials, SmscError] = {}
        self.delay = 0.0

    async def fetch_balance(self, creds: Credentials) -> Balance:
        request = Request(creds, time.monotonic())
        self.requests.append(request)
        try:
            await asyncio.sleep(self.delay)
            if creds in self.errors:
                raise self.errors[creds]
            return BALANCE
        finally:
            request.end = time.monotonic()


Replica = Callable[..., BalanceGuard]


@pytest.fixture
def smsc() -> Smsc:
    return Smsc()


@pytest.fixture
async def replica(redis_url: str, smsc: Smsc) -> AsyncIterator[Replica]:
    """Makes replicas: a guard with its own Redis client and state, all on one Redis."""
    clients: list[Redis] = []

    def make(*, state: dict | None = None, **options: object) -> BalanceGuard:
        client = Redis.from_url(redis_url)
        clients.append(client)
        shared = RedisGuardState(client, KEY, **{"auth_window": 2.0, **(state or {})})
        return BalanceGuard(smsc, state=shared, **options)

    yield make
    for client in clients:
        await client.aclose()


async def test_thirty_callers_on_two_replicas_make_one_request(
    replica: Replica, smsc: Smsc
) -> None:
    smsc.delay = 0.2
    replicas = [replica(), replica()]
    callers = [replicas[i % 2].balance(ALICE) for i in range(30)]
    results = await asyncio.gather(*callers)
    assert len(smsc.requests) == 1
    assert {result.balance for result in results} == {BALANCE}
    assert {result.checked_at for result in results} == {results[0].checked_at}


async def test_no_window_holds_more_than_the_limit_across_replicas(
    replica: Replica, smsc: Smsc
) -> None:
    smsc.delay = 0.02
    options = {"max_per_minute": 3, "cache_seconds": 0, "state": {"window": 1.0}}
    replicas = [replica(**options), replica(**options)]
    stop = time.monotonic() + 2.5
    while time.monotonic() < stop:
        await asyncio.gather(*(guard.balance(ALICE) for guard in replicas), return_exceptions=True)
        await asyncio.sleep(0.02)
    requests = smsc.requests
    assert 6 <= len(requests) <= 9  # three per second, as many as the window let through
    for earlier, later in zip(requests, requests[3:], strict=False):
        # A request goes out a whole window after the answer three requests back.
        assert later.start - earlier.end >= 1.0 - 0.005


async def test_refused_credentials_are_refused_by_every_replica(
    replica: Replica, smsc: Smsc
) -> None:
    first, second = replica(), replica()
    smsc.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await first.balance(ALICE)
    with pytest.raises(CredentialsRejected):
        await second.balance(ALICE, known_good=True)
    assert len(smsc.requests) == 1

    del smsc.errors[ALICE]  # the allow-list was fixed; a person asks again, elsewhere
    first.retry(ALICE)
    assert (await first.balance(ALICE)).fresh
    assert (await second.balance(ALICE)).balance == BALANCE  # cached for the fleet
    assert len(smsc.requests) == 2


async def test_auth_failure_budget_is_the_fleets(replica: Replica, smsc: Smsc) -> None:
    replicas = [replica(auth_failures_per_site=2), replica(auth_failures_per_site=2)]
    wrong = [Credentials("smsc.ru", f"user{i}", "wrong") for i in range(3)]
    for creds in wrong:
        smsc.errors[creds] = SmscAuthError(2, "authorise error")
    for index in range(2):
        with pytest.raises(SmscAuthError):
            await replicas[index].balance(wrong[index], askers=(f"user:{index}",))
    with pytest.raises(AuthChecksPaused) as caught:
        await replicas[0].balance(BOB, askers=("user:9",))
    assert type(caught.value) is AuthChecksPaused
    assert 1.5 < caught.value.retry_after <= 2.0  # the 2 s window, from the first failure
    assert (await replicas[1].balance(KZ)).fresh  # another site
    assert (await replicas[1].balance(ALICE, known_good=True)).fresh  # verified before
    await asyncio.sleep(caught.value.retry_after)
    assert (await replicas[1].balance(BOB, askers=("user:9",))).fresh


async def test_an_askers_failure_counts_on_every_replica(replica: Replica, smsc: Smsc) -> None:
    first, second = replica(), replica()
    smsc.errors[ALICE] = SmscAuthError(2, "authorise error")
    with pytest.raises(SmscAuthError):
        await first.balance(ALICE, askers=("user:5", "chat:-100"))
    with pytest.raises(AskerPaused):
        await second.balance(BOB, askers=("user:6", "chat:-100"))
    assert (await second.balance(BOB, askers=("user:6", "chat:-200"))).fresh
    assert len(smsc.requests) == 2


async def test_an_ip_block_pauses_the_site_for_the_fleet(replica: Replica, smsc: Smsc) -> None:
    first, second = replica(ip_block_pause=1.0), replica(ip_block_pause=1.0)
    known = await second.balance(ALICE)
    smsc.errors[BOB] = SmscIpBlocked(4, "ip is blocked")
    with pytest.raises(SmscIpBlocked):
        await first.balance(BOB)
    with pytest.raises(SitePaused) as caught:
        await second.balance(Credentials("smsc.ru", "carol", "carol-pw"))
    assert 0.5 < caught.value.retry_after <= 1.0
    served = await second.balance(ALICE, known_good=True)
    assert (served.stale, served.checked_at) == (True, known.checked_at)
    assert (await second.balance(KZ)).fresh  # another site
    assert len(smsc.requests) == 3
    await asyncio.sleep(caught.value.retry_after)
    del smsc.errors[BOB]
    assert (await second.balance(BOB)).fresh


async def test_error_9_pauses_the_login_for_the_fleet(replica: Replica, smsc: Smsc) -> None:
    options = {"rate_limit_pause": 1.0, "cache_seconds": 0}
    first, second = replica(**options), replica(**options)
    await second.balance(ALICE)
    smsc.errors[ALICE] = SmscRateLimited(9, "duplicate request, wait a minute")
    with pytest.raises(SmscRateLimited):
        await first.balance(ALICE)
    served = await second.balance(ALICE)  # the last known balance meanwhile
    assert served.stale and served.balance == BALANCE
    with pytest.raises(LoginPaused) as caught:
        await second.balance(Credentials("smsc.ru", "alice", "alice-new-pw"))
    assert 0.5 < caught.value.retry_after <= 1.0
    assert (await second.balance(BOB)).fresh  # another login
    assert len(smsc.requests) == 3
    await asyncio.sleep(caught.value.retry_after)
    del smsc.errors[ALICE]
    assert (await second.balance(ALICE)).fresh


async def test_a_dead_replicas_turn_frees_itself(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    # A replica takes the login's turn for a request bounded to 1 s, then dies unfinished.
    client = Redis.from_url(redis_url)
    dead = RedisGuardState(client, KEY, lease_margin=0.2)
    turn = await dead.begin(ALICE, (), ALLOWANCE, known_good=True, fresh_for=0, hold=1.0)
    taken = time.monotonic()
    await client.aclose()
    assert turn.admission is not None and turn.admission.granted
    assert (await asyncio.wait_for(replica().balance(ALICE), 3.0)).fresh
    [request] = smsc.requests
    assert 1.2 - 0.05 <= request.start - taken <= 1.2 + 0.5  # the lease, and a busy host's slack


async def test_a_slow_request_keeps_the_turn_while_it_runs(replica: Replica, smsc: Smsc) -> None:
    # The lease is only the request's bound and a little: 0.8 s of SMSC fill most of it.
    options = {"request_timeout": 1.0, "state": {"lease_margin": 0.1}}
    first, second = replica(**options), replica(**options)
    smsc.delay = 0.8
    asking = asyncio.create_task(first.balance(ALICE))
    await asyncio.sleep(0.5)
    served = await second.balance(ALICE)  # waits for the first's answer: no second request
    assert (await asking).fresh and served.balance == BALANCE
    assert len(smsc.requests) == 1


async def test_an_unanswered_request_frees_the_login_for_the_fleet(
    replica: Replica, smsc: Smsc
) -> None:
    first, second = replica(request_timeout=0.2), replica(request_timeout=0.2)
    smsc.delay = 30.0
    with pytest.raises(SmscUnavailable):
        await first.balance(ALICE)
    smsc.delay = 0.0
    assert (await asyncio.wait_for(second.balance(ALICE), 1.0)).fresh  # not the lease's 5 s
    earlier, later = smsc.requests
    assert later.start >= earlier.end


class CountedConnection(Connection):
    """A Redis connection noting what each write to Redis carries: one write, one round trip."""

    writes: list[bytes]

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        packed = command if isinstance(command, bytes) else b"".join(command)
        self.writes.append(packed)
        await super().send_packed_command(command, check_health)


@pytest.fixture
async def counted(redis_url: str) -> AsyncIterator[tuple[Redis, list[bytes]]]:
    """A Redis client, and what it wrote to Redis (each item a round trip)."""
    writes: list[bytes] = []
    connection = type("Counted", (CountedConnection,), {"writes": writes})
    client = Redis.from_url(redis_url, connection_class=connection)
    yield client, writes
    await client.aclose()


async def guard_taught(counted: tuple[Redis, list[bytes]], smsc: Smsc) -> BalanceGuard:
    """A guard on the counted client, Redis taught its scripts, the writes so far forgotten."""
    client, writes = counted
    guard = BalanceGuard(smsc, state=RedisGuardState(client, KEY))
    await guard.balance(BOB)
    writes.clear()
    return guard


async def test_a_request_costs_two_round_trips(
    counted: tuple[Redis, list[bytes]], smsc: Smsc
) -> None:
    _, writes = counted
    guard = await guard_taught(counted, smsc)
    assert (await guard.balance(ALICE)).fresh
    # Looked, turned and admitted; then finished: a script each.
    assert [write.count(b"EVALSHA") for write in writes] == [1, 1]
    writes.clear()
    assert (await guard.balance(ALICE)).stale
    assert [write.count(b"EVALSHA") for write in writes] == [1]  # cached for the fleet


async def test_checks_at_once_share_round_trips(
    counted: tuple[Redis, list[bytes]], smsc: Smsc
) -> None:
    _, writes = counted
    guard = await guard_taught(counted, smsc)
    logins = [Credentials("smsc.ru", f"login{n}", "pw") for n in range(50)]
    # Known good, as a sweep's are: new credentials take a site's turn one at a time.
    results = await asyncio.gather(*(guard.balance(c, known_good=True) for c in logins))
    assert all(result.fresh for result in results)
    assert len(smsc.requests) == 51  # each login asked SMSC once
    assert sum(write.count(b"EVALSHA") for write in writes) == 100
    assert len(writes) <= 4  # not a hundred: those called together went together


async def test_scripts_redis_forgot_are_taught_again(
    counted: tuple[Redis, list[bytes]], smsc: Smsc
) -> None:
    client, _ = counted
    guard = BalanceGuard(smsc, state=RedisGuardState(client, KEY), cache_seconds=0)
    await guard.balance(ALICE)
    await client.script_flush()  # as a restarted Redis would
    assert (await guard.balance(ALICE)).fresh
    assert len(smsc.requests) == 2
    standing = RedisGuardState(client, KEY)
    assert (await standing.standing(ALICE, known_good=False)).verified


async def test_a_call_given_up_before_it_went_takes_no_turn(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    state = RedisGuardState(client, KEY)
    options = {"known_good": True, "fresh_for": 0.0, "hold": 10.0}
    try:
        given_up = asyncio.create_task(state.begin(ALICE, (), ALLOWANCE, **options))
        await asyncio.sleep(0)  # called: its script waits for the next pipeline
        given_up.cancel()
        # Made, it would hold the login's turn for its lease (15 s here).
        turn = await asyncio.wait_for(state.begin(ALICE, (), ALLOWANCE, **options), 1.0)
    finally:
        await client.aclose()
    assert turn.admission is not None and turn.admission.granted


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_unreachable_redis_refuses_without_asking_smsc(
    smsc: Smsc, caplog: pytest.LogCaptureFixture
) -> None:
    client = Redis(port=closed_port(), retry=Retry(NoBackoff(), 1))
    guard = BalanceGuard(smsc, state=RedisGuardState(client, KEY))
    try:
        with pytest.raises(GuardUnavailable) as caught:
            await guard.balance(ALICE, known_good=True)
    finally:
        await client.aclose()
    assert caught.value.retry_after == 5
    assert check_error(caught.value) == CheckError.RATE_LIMITED  # wait, nothing wrong with it
    assert smsc.requests == []
    [record] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert "ConnectionError" in record.getMessage() and not record.exc_info


async def test_a_failing_state_serves_the_last_balance(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    guard = replica(cache_seconds=0)
    known = await guard.balance(ALICE)
    # The login's window now holds something Redis cannot count: every admission fails.
    client = Redis.from_url(redis_url)
    try:
        [window] = await client.keys("smscbot:guard:login:*:requests")
        await client.delete(window)
        await client.set(window, "not a window")
    finally:
        await client.aclose()
    served = await guard.balance(ALICE)
    assert (served.stale, served.checked_at) == (True, known.checked_at)
    with pytest.raises(GuardUnavailable):
        await guard.balance(Credentials("smsc.ru", "alice", "alice-new-pw"))
    assert len(smsc.requests) == 1


async def test_nothing_secret_in_redis(replica: Replica, smsc: Smsc, redis_url: str) -> None:
    guard = replica()
    apikey = Credentials("smsc.ru", None, "the-api-key")
    smsc.errors[BOB] = SmscAuthError(2, "authorise error")
    await guard.balance(ALICE, askers=("user:5",))
    await guard.balance(apikey)
    with pytest.raises(SmscAuthError):
        await guard.balance(BOB, askers=("user:5",))
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        stored = []
        for key in await client.keys("*"):
            assert key.startswith("smscbot:guard:")
            stored.append(key)
            kind = await client.type(key)
            if kind == "hash":
                stored += (await client.hgetall(key)).values()
            elif kind == "zset":
                stored += await client.zrange(key, 0, -1)
    finally:
        await client.aclose()
    words = ["alice", "bob", "user:5", "smsc.ru", "the-api-key", "-pw"]
    words += [creds.fingerprint for creds in (ALICE, BOB, apikey)]
    assert not [text for text in stored for word in words if word in text]
    assert any('"84.75"' in text for text in stored)  # the balance, as an exact string
