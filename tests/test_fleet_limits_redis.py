"""The SMSC guard's state in a real Redis: the round trips a request costs (scripts sent
together, taught again when Redis forgot them), a call given up before it went, Redis
unreachable or failing, and nothing secret in what it holds."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Connection, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.fleet.limits import RedisGuardState
from bot.smsc.check_errors import CheckError, check_error
from bot.smsc.client import Credentials
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard
from bot.smsc.refusals import GuardUnavailable, LoginPaused
from tests.fleet_fixtures import ALLOWANCE, KEY, Replica, Smsc, fleet_smsc
from tests.guard_fixtures import ALICE, BOB

smsc = fleet_smsc  # the replicas' fake SMSC (tests/fleet_fixtures.py)


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


async def test_redis_emptied_mid_minute_lets_no_login_past_its_limit(
    replica: Replica, smsc: Smsc, redis_url: str
) -> None:
    """Redis restarted empty (or flushed) forgets the requests of the minute: every login then
    counts as having spent its minute, for one window."""
    options = {"cache_seconds": 0, "state": {"window": 1.0}}
    replicas = [replica(**options), replica(**options)]

    async def burst() -> list[LoginPaused]:
        """/balance 30 times, one after another, on either replica: the refusals."""
        refused = []
        for i in range(30):
            try:
                await replicas[i % 2].balance(ALICE)
            except LoginPaused as refusal:
                refused.append(refusal)
        return refused

    await burst()
    assert len(smsc.requests) == 10  # SMSC's limit
    client = Redis.from_url(redis_url)
    try:
        await client.flushall()  # as a Redis restarted without its data
    finally:
        await client.aclose()
    refused = await burst()
    assert len(smsc.requests) == 10  # none past the limit in the window
    assert len(refused) == 30  # nothing known to serve either: told when to retry
    assert 0.5 < min(result.retry_after for result in refused) <= 1.0
    await asyncio.sleep(max(result.retry_after for result in refused))
    assert (await replicas[0].balance(ALICE)).fresh  # the window over, SMSC is asked again
    assert len(smsc.requests) == 11
