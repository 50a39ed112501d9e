"""The guard's tests' credentials, fake fetcher and injected clock, and the guard they check
(a pytest plugin: tests/conftest.py). The tests that need no clock run also on the shared Redis
state (BOTH_STATES; tests/test_fleet_limits.py times that one with real, short spans).

The clock is `guard_clock`: the alerting tests' `clock` (tests/alerting_fixtures.py), a plugin
for every test too, is another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.fleet.limits import RedisGuardState
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscError
from bot.smsc.guard import BalanceGuard
from bot.smsc.state import GuardState, GuardStateUnavailable
from bot.smsc.windows import MemoryGuardState

EPOCH = datetime(2025, 1, 1, tzinfo=UTC)

ALICE = Credentials("smsc.ru", "alice", "alice-pw")
ALICE_WRONG = Credentials("smsc.ru", "alice", "alice-typo")
BOB = Credentials("smsc.ru", "bob", "bob-pw")
CAROL = Credentials("smsc.ru", "carol", "carol-pw")
KZ = Credentials("smsc.kz", "alice", "alice-pw")


def balance_of(creds: Credentials) -> Balance:
    """A balance that tells whose it is: a guard serving it to other credentials is caught."""
    return Balance(Decimal(int(creds.fingerprint[:6], 16)), Decimal(0), "RUB")


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.t)


class Fetcher:
    """Answers with `balance_of`, or raises what `errors` holds for the credentials.

    With `gate` set, every fetch waits for it: requests stay in flight until the test says.
    """

    def __init__(self) -> None:
        self.calls: list[Credentials] = []
        self.errors: dict[Credentials, SmscError] = {}
        self.gate: asyncio.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0

    async def fetch_balance(self, creds: Credentials) -> Balance:
        self.calls.append(creds)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if creds in self.errors:
                raise self.errors[creds]
            return balance_of(creds)
        finally:
            self.in_flight -= 1


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher()


# The tests that need no clock of their own run on the in-memory state and on Redis's.
BOTH_STATES = pytest.mark.parametrize("state_kind", ["memory", "redis"], indirect=True)


class StateOutage(MemoryGuardState):
    """A shared state every call of which fails while `down`, as one in a stopped Redis does."""

    down = False

    def _reached(self) -> None:
        if self.down:
            raise GuardStateUnavailable("redis unreachable: ConnectionError")

    async def standing(self, *args: Any, **kwargs: Any) -> Any:
        self._reached()
        return await super().standing(*args, **kwargs)

    async def begin(self, *args: Any, **kwargs: Any) -> Any:
        self._reached()
        return await super().begin(*args, **kwargs)

    async def finish(self, *args: Any, **kwargs: Any) -> Any:
        self._reached()
        return await super().finish(*args, **kwargs)


@pytest.fixture
def state_kind(request: pytest.FixtureRequest) -> str:
    return getattr(request, "param", "memory")


@pytest.fixture
def shared_redis_url(request: pytest.FixtureRequest, state_kind: str) -> str | None:
    return request.getfixturevalue("redis_url") if state_kind == "redis" else None


@pytest.fixture
def guard_clock() -> Clock:
    return Clock()


@pytest.fixture
async def state(shared_redis_url: str | None, guard_clock: Clock) -> AsyncIterator[GuardState]:
    if shared_redis_url is None:
        yield MemoryGuardState(guard_clock)
        return
    client = Redis.from_url(shared_redis_url)
    yield RedisGuardState(client, b"test-key")
    await client.aclose()


@pytest.fixture
def guard(fetcher: Fetcher, guard_clock: Clock, state: GuardState) -> BalanceGuard:
    return BalanceGuard(fetcher, state=state, now=guard_clock.now)


async def settle() -> None:
    """Let every ready task run until it blocks (on Redis's answers too)."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
