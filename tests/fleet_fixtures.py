"""The SMSC guard's tests on a real Redis, for several replicas (a pytest plugin:
tests/conftest.py): the fake SMSC they share, which notes every request (`fleet_smsc`, bound as
each module's `smsc`), and `replica`, which makes guards on one Redis, each with a client of its
own. The credentials are the guard's tests' (tests/guard_fixtures.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from bot.fleet.limits import RedisGuardState
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscError
from bot.smsc.guard import BalanceGuard
from bot.smsc.state import Allowance

KEY = b"fleet-test-key"
BALANCE = Balance(Decimal("84.75"), Decimal(0), "RUB")
ALLOWANCE = Allowance(
    max_per_minute=10, auth_failures_per_site=3, auth_failures_per_asker=1, auth_failures_cap=4
)


@dataclass
class Request:
    creds: Credentials
    start: float  # time.monotonic()
    end: float = 0.0


class Smsc:
    """The fake SMSC both replicas ask: answers BALANCE after `delay` (or the credentials'
    own in `delays`), or raises `errors`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.errors: dict[Credentials, SmscError] = {}
        self.delay = 0.0
        self.delays: dict[Credentials, float] = {}

    async def fetch_balance(self, creds: Credentials) -> Balance:
        request = Request(creds, time.monotonic())
        self.requests.append(request)
        try:
            await asyncio.sleep(self.delays.get(creds, self.delay))
            if creds in self.errors:
                raise self.errors[creds]
            return BALANCE
        finally:
            request.end = time.monotonic()


Replica = Callable[..., BalanceGuard]


@pytest.fixture
def fleet_smsc() -> Smsc:
    """The fleet tests' `smsc`, which each of their modules binds (`smsc = fleet_smsc`): the
    handlers' `smsc` (tests/handler_fixtures.py) is every other test's."""
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
