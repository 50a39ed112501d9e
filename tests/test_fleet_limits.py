"""The SMSC guard shared by replicas through a real Redis: two `BalanceGuard`s ("two replicas",
each with a Redis client of its own) in front of one fake SMSC that notes every request.
Windows and pauses are shortened to a second or so; the times are Redis's and the real ones."""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from redis.asyncio import Redis
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
)
from bot.smsc.guard import (
    AskerPaused,
    AuthChecksPaused,
    BalanceGuard,
    CredentialsRejected,
    GuardUnavailable,
    LoginPaused,
    SitePaused,
)

KEY = b"fleet-test-key"
ALICE = Credentials("smsc.ru", "alice", "alice-pw")
BOB = Credentials("smsc.ru", "bob", "bob-pw")
KZ = Credentials("smsc.kz", "alice", "alice-pw")
BALANCE = Balance(Decimal("84.75"), Decimal(0), "RUB")


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


HOLD_A_TURN = """
import asyncio, sys
from redis.asyncio import Redis
from bot.fleet.limits import RedisGuardState
async def main():
    state = RedisGuardState(Redis.from_url(sys.argv[1]), sys.argv[2].encode(), lock_timeout=1.0)
    async with state.login_turn(sys.argv[3]):
        print("held", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_a_dead_replicas_turn_frees_itself(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLD_A_TURN,
        redis_url,
        KEY.decode(),
        ALICE.rate_key,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert await holder.stdout.readline() == b"held\n"
        caller = asyncio.create_task(replica().balance(ALICE))
        await asyncio.sleep(1.5)  # longer than the lock's timeout: a living holder renews it
        assert not caller.done()
        holder.kill()
        killed = time.monotonic()
        assert (await asyncio.wait_for(caller, 2.0)).fresh
        assert time.monotonic() - killed <= 1.5  # the timeout, and some slack for a busy host
        assert len(smsc.requests) == 1
    finally:
        if holder.returncode is None:
            holder.kill()
        await holder.wait()


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
