"""The alerting tests' injected clock, monitor and secrets' box (a pytest plugin:
tests/conftest.py), what the tests of the checks' and the outbox's loops count with, and the
checks' tests' SMSC, accounts and `checks` (which asks the module's `smsc`: a `Smsc` where a
module gives one)."""

import asyncio
import contextlib
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.alerting import writing
from bot.alerting.monitoring import Monitor
from bot.alerting.scheduling import Checks
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, Chat
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def stored_account(chat_id: int, name: str = "shop", **fields: object) -> Account:
    """An account of `chat_id` logging in as `name`, its secret a placeholder nothing decrypts
    unless `secret` is given."""
    fields = {"secret": b"token", **fields}
    return Account(
        chat_id=chat_id, name=name, site="https://smsc.ru", login=name, check_interval=900, **fields
    )


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def box():
    """The secrets' box of the checks' tests."""
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def monitor(clock):
    return Monitor(TelegramRenderer(create_i18n()), now=clock)


class Counted:
    """Counts the calls of a coroutine method (a loop's look for work), and waits for more."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        self.calls, self._wanted, self._reached = 0, 0, asyncio.Event()
        method = getattr(owner, name)

        async def counted(*args, **kwargs):
            self.calls += 1
            if self.calls >= self._wanted:
                self._reached.set()
            return await method(*args, **kwargs)

        monkeypatch.setattr(owner, name, counted)

    async def more(self, count: int) -> None:
        self._wanted = self.calls + count
        self._reached.clear()
        await asyncio.wait_for(self._reached.wait(), 10)


async def looks_hold_their_connection(engine: AsyncEngine, looks: Counted) -> bool:
    """Whether ten looks of a running loop, after its first five (those at its start may write),
    took no connection from the pool: on SQLite its loop holds one (bot.storage.direct); on
    other databases there is nothing to tell."""
    await looks.more(5)
    taken: list[object] = []
    event.listen(engine.sync_engine, "checkout", lambda connection, *_: taken.append(connection))
    await looks.more(10)
    return engine.dialect.name != "sqlite" or not taken


def refusing(held, times: int):
    """`held` (bot.storage.direct.held) failing its first `times` calls, as a database file
    that cannot be opened would."""
    refusals = []

    @contextlib.asynccontextmanager
    async def refused_at_first(engine):
        if len(refusals) < times:
            refusals.append(1)
            raise OSError("unable to open database file")
        async with held(engine) as connection:
            yield connection

    return refused_at_first


class Smsc:
    def __init__(self) -> None:
        self.balances = {"shop": Decimal(1500), "other": Decimal(700)}
        self.passwords = {"shop": "pw", "other": "pw"}
        self.requests: list[str] = []
        self.asked = asyncio.Event()

    async def fetch_balance(self, creds: Credentials) -> Balance:
        self.requests.append(creds.login)
        self.asked.set()
        if self.passwords.get(creds.login) != creds.secret:
            raise SmscAuthError(2, "authorise error")
        return Balance(self.balances[creds.login], Decimal(0), "RUB")


class NoOutbox:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


@pytest.fixture
def checks(sessionmaker, smsc, box, clock):
    guard = BalanceGuard(smsc, cache_seconds=0, now=clock)
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    return Checks(sessionmaker, guard, box, monitor, NoOutbox(), now=clock, rng=random.Random(1))


async def add(sessionmaker, box, chat_id, login, *, password="pw", interval=60, **fields):
    async with sessionmaker() as session:
        if await session.get(Chat, chat_id) is None:
            session.add(Chat(id=chat_id, type="supergroup", language="en", **fields))
        session.add(
            Account(
                chat_id=chat_id,
                name=login,
                site="https://smsc.ru",
                login=login,
                secret=box.encrypt(password),
                credentials_key=box.keyed_hash("https://smsc.ru", login, password),
                check_interval=interval,
                threshold=Decimal(1000),
                next_check_at=START,
            )
        )
        await session.commit()


async def run(checks) -> int:
    started = await checks.dispatch()
    await checks.drain()
    return started


LOGINS = writing.WRITE_BATCH + 10  # more than one write takes


class SlowSmsc(Smsc):
    """Answers only when the test lets it: checks can be caught while SMSC answers."""

    def __init__(self) -> None:
        super().__init__()
        self.balances |= {f"login{i}": Decimal(2000) for i in range(LOGINS)}
        self.passwords |= {f"login{i}": "pw" for i in range(LOGINS)}
        self.answer = asyncio.Event()

    async def fetch_balance(self, creds: Credentials) -> Balance:
        await self.answer.wait()
        return await super().fetch_balance(creds)
