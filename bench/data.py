"""The benchmark's accounts: laid out over chats and logins, seeded straight into the database
(SQLite or PostgreSQL; the fleet's end-to-end test seeds PostgreSQL with the same rows), and the
benchmark's look into that database while the bot works.

Account j belongs to chat j // (accounts / chats) and uses login j % logins, so each login is
watched by accounts / logins chats and no chat has the same login twice. The database is
created with the project's own migrations and rows of `bot.storage.models`, secrets encrypted with
the SECRET_KEY the bot is then started with, exactly as `/add` would have left them.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Executable, Row, func, insert, select, text, update

from bench.names import login_name, password
from bot.smsc.sites import site_url
from bot.storage.crypto import SecretBox
from bot.storage.engine import create_engine, migrate
from bot.storage.models import Account, AccountState, BalanceSample, Chat

CHAT_BASE = 10_000_000  # private chats: positive ids
THRESHOLD = Decimal(100)
BALANCE = "1000.00"  # what SMSC answers: well above the threshold
LOW_BALANCE = "50.00"  # below it: an alert
CHECK_INTERVAL = 3600  # long: nothing is checked again while a benchmark runs


@dataclass(frozen=True)
class Layout:
    accounts: int
    chats: int
    logins: int
    history: int = 0  # hours of history each account has, a sample an hour

    def __post_init__(self) -> None:
        if self.accounts % self.chats or self.per_chat > self.logins:
            raise ValueError(f"cannot lay out {self}")

    @property
    def per_chat(self) -> int:
        return self.accounts // self.chats

    def chat_id(self, index: int) -> int:
        return CHAT_BASE + index

    @property
    def chat_ids(self) -> list[int]:
        return [self.chat_id(c) for c in range(self.chats)]

    def chat_of(self, account: int) -> int:
        return self.chat_id(account // self.per_chat)

    def login_of(self, account: int) -> int:
        return account % self.logins


async def seed(url: str, secret_key: str, site: str, layout: Layout) -> None:
    """Chats and accounts, none due yet: an interval away, as a check just done leaves them
    (the start-up spread brings back only checks set further ahead than a check sets them).

    Every account was checked an hour ago and found OK (so SMSC accepted its credentials, as
    it did at /add), its last history sample two hours ago (after `layout.history` hours of
    them, one an hour): the next check takes a sample and studies the history, the costlier
    path. Whether the next balance is low is up to the fake SMSC (BALANCE or LOW_BALANCE).
    """
    box = SecretBox(secret_key)
    site = site_url(site)
    now = datetime.now(UTC)
    # Unbounded, as copy-data: one INSERT of an hour's samples of every account may rightly
    # outlast the serving bot's bound (bot.storage.engine.STATEMENT_TIMEOUT).
    engine = create_engine(url, statement_timeout=None)
    try:
        await migrate(engine)
        secrets = {}
        for login in range(layout.logins):
            name, secret = login_name(login), password(login)
            secrets[login] = (name, box.encrypt(secret), box.keyed_hash(site, name, secret))
        chats = [
            {"id": chat_id, "type": "private", "title": None, "language": "en", "active": True}
            for chat_id in layout.chat_ids
        ]
        accounts = []
        for j in range(layout.accounts):
            name, token, key = secrets[layout.login_of(j)]
            accounts.append(
                {
                    "chat_id": layout.chat_of(j),
                    "name": name,
                    "site": site,
                    "login": name,
                    "secret": token,
                    "threshold": THRESHOLD,
                    "check_interval": CHECK_INTERVAL,
                    "state": AccountState.OK,
                    "last_balance": Decimal(BALANCE),
                    "last_credit": Decimal(0),
                    "currency": "RUB",
                    "last_checked_at": now - timedelta(hours=1),
                    "last_sample_at": now - timedelta(hours=2),
                    "failures": 0,
                    "next_check_at": now + timedelta(seconds=CHECK_INTERVAL),
                    "credentials_key": key,
                }
            )
        async with engine.begin() as connection:
            await connection.execute(insert(Chat), chats)
            for start in range(0, len(accounts), 2000):
                await connection.execute(insert(Account), accounts[start : start + 2000])
            ids = (await connection.execute(select(Account.id))).scalars().all()
            for hours_ago in range(layout.history):
                await connection.execute(insert(BalanceSample), _samples(ids, now, hours_ago))
    finally:
        await engine.dispose()


def _samples(ids: list[int], now: datetime, hours_ago: int) -> list[dict[str, Any]]:
    """Each account's sample `hours_ago` hours before its last (two hours ago): spending one a
    day, steadily, so that the next check's balance (BALANCE) is no anomaly."""
    taken_at = now - timedelta(hours=2 + hours_ago)
    balance = Decimal(BALANCE) + Decimal(hours_ago) / 24
    return [
        {"account_id": id_, "taken_at": taken_at, "balance": balance, "credit": Decimal(0)}
        for id_ in ids
    ]


# Alembic loads the migration scripts as modules: one seeding at a time (--smoke runs its
# scenarios side by side, in threads).
_SEEDING = threading.Lock()


def seed_now(url: str, secret_key: str, site: str, layout: Layout) -> None:
    """`seed`, from a thread with no event loop running, one at a time in the process."""
    with _SEEDING:
        asyncio.run(seed(url, secret_key, site, layout))


class Probe:
    """A look into the bot's database (SQLite or PostgreSQL) from beside the bot, for the
    benchmark and the end-to-end tests: an engine and an event loop of its own, used by one
    thread at a time. SQLite's WAL lets it read while the bot writes; its writes wait their turn."""

    def __init__(self, url: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._engine = create_engine(url)

    def run(self, statement: Executable) -> list[Row[Any]]:
        async def execute() -> list[Row[Any]]:
            async with self._engine.begin() as connection:
                result = await connection.execute(statement)
                return list(result.all()) if result.returns_rows else []

        return self._loop.run_until_complete(execute())

    def close(self) -> None:
        self._loop.run_until_complete(self._engine.dispose())
        self._loop.close()

    def make_due(self, after: float = 0.0) -> datetime:
        """Every account due `after` seconds from now (not overdue): the first look for due
        accounts from then takes them all. Returns when they fall due."""
        due = datetime.now(UTC) + timedelta(seconds=after)
        self.run(update(Account).values(next_check_at=due))
        return due

    def checked_since(self, since: datetime) -> int:
        query = select(func.count()).where(Account.last_checked_at >= since)
        return self.run(query)[0][0]

    def failed_checks(self) -> int:
        return self.run(select(func.count()).where(Account.failures > 0))[0][0]

    def count_checks(self) -> None:
        """From now on, log every check written (a claim's lease cleared with its result) in
        `bench_checks`, by a trigger: PostgreSQL only, where it costs the server, not the bot.
        (Balance samples would not show a second check: an unchanged balance is sampled at
        most once an hour.)"""
        for statement in COUNT_CHECKS:
            self.run(text(statement))

    def backend_pid(self) -> int:
        """The PostgreSQL process serving the probe (a child of the postmaster)."""
        return self.run(text("SELECT pg_backend_pid()"))[0][0]

    def checked_more_than_once(self) -> int:
        """Accounts whose checks were written more than once since count_checks."""
        per_account = select(text("account_id")).select_from(text("bench_checks"))
        doubled = per_account.group_by(text("account_id")).having(func.count() > 1)
        return self.run(select(func.count()).select_from(doubled.subquery()))[0][0]


COUNT_CHECKS = (
    "CREATE TABLE bench_checks (account_id integer NOT NULL)",
    """CREATE FUNCTION bench_check_written() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN INSERT INTO bench_checks VALUES (NEW.id); RETURN NULL; END $$""",
    """CREATE TRIGGER bench_check_written AFTER UPDATE ON accounts FOR EACH ROW
    WHEN (OLD.lease_until IS NOT NULL AND NEW.lease_until IS NULL)
    EXECUTE FUNCTION bench_check_written()""",
)
