"""The benchmark's accounts: laid out over chats and logins, seeded straight into the database
(SQLite here; the fleet's end-to-end test seeds PostgreSQL with the same rows).

Account j belongs to chat j // (accounts / chats) and uses login j % logins, so each login is
watched by accounts / logins chats and no chat has the same login twice. The database is
created with the project's own migrations and rows of `bot.storage.models`, secrets encrypted with
the SECRET_KEY the bot is then started with, exactly as `/add` would have left them.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert

from bot.smsc.sites import site_url
from bot.storage.crypto import SecretBox
from bot.storage.engine import create_engine, migrate
from bot.storage.models import Account, AccountState, Chat

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


def login_name(login: int) -> str:
    return f"user{login:05d}"


def password(login: int) -> str:
    return f"pw-{login:05d}"


def db_time(moment: datetime) -> str:
    """A UTC time as SQLAlchemy's SQLite DateTime stores it (text that sorts by time)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


async def seed(url: str, secret_key: str, site: str, layout: Layout) -> None:
    """Chats and accounts, none due yet (a day away, so the start-up spread leaves them be).

    Every account was checked an hour ago and found OK (so SMSC accepted its credentials, as
    it did at /add), its last history sample two hours ago: the next check takes a sample
    and studies the history, the costlier path. Whether the next balance is low is up to
    the fake SMSC (BALANCE or LOW_BALANCE).
    """
    box = SecretBox(secret_key)
    site = site_url(site)
    now = datetime.now(UTC)
    engine = create_engine(url)
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
                    "next_check_at": now + timedelta(days=1),
                    "credentials_key": key,
                }
            )
        async with engine.begin() as connection:
            await connection.execute(insert(Chat), chats)
            for start in range(0, len(accounts), 2000):
                await connection.execute(insert(Account), accounts[start : start + 2000])
    finally:
        await engine.dispose()


def connect(database: Path) -> sqlite3.Connection:
    """A plain connection beside the bot's (WAL): waits for the bot's writes, never blocks them
    for long."""
    return sqlite3.connect(database, timeout=30, isolation_level=None)


def make_due(database: Path) -> datetime:
    """Every account due now (not overdue): the next look for due accounts takes them all."""
    now = datetime.now(UTC)
    with closing(connect(database)) as db:
        db.execute("UPDATE accounts SET next_check_at = ?", (db_time(now),))
    return now


def checked_since(db: sqlite3.Connection, since: datetime) -> int:
    row = db.execute(
        "SELECT count(*) FROM accounts WHERE last_checked_at >= ?", (db_time(since),)
    ).fetchone()
    return row[0]


def failed_checks(db: sqlite3.Connection) -> int:
    return db.execute("SELECT count(*) FROM accounts WHERE failures > 0").fetchone()[0]
