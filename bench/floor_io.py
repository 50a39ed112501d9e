"""The process of the sweep's I/O alone (see bench.floor, which starts it): the least a bot
that leases what it checks must do, and what it must hold in memory to do it.

It imports the stack the bot is built on as the bot does at start (`STACK`), and none of the
bot's own code, so its peak RSS is what any bot on this stack holds through the same sweep.
Its CPU is counted from the go, after the imports.

python -m bench.floor_io DATABASE SMSC_URL BATCH WRITE_BATCH CONCURRENCY
    # an SQLite file or a PostgreSQL URL; prints "ready", starts at a line on stdin, then
    # prints {"cpu": s, "wall": s, "accounts": n, "peak_rss": bytes}
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import aiosqlite
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.names import password
from bench.proc import sample
from bot.telegram.lazy_models import import_aiogram

# What the bot loads at start on SQLite beside its own modules: aiogram (imported as the bot
# imports it, its models built when used), its i18n (babel) and aiohttp's web server (health
# and metrics), SQLAlchemy's ORM and asyncio layer with the aiosqlite dialect, cryptography's
# Fernet, APScheduler, prometheus-client and pydantic-settings. httpx and aiosqlite are
# imported above.
# What only the bot's own modules bring (python-json-logger, pyahocorasick, babel's formats)
# counts as the bot's. tests/test_bench.py checks that the bot loads all of this.
STACK = (
    "aiogram",
    "aiogram.utils.i18n",
    "aiohttp.web",
    "sqlalchemy.orm",
    "sqlalchemy.ext.asyncio",
    "sqlalchemy.dialects.sqlite.aiosqlite",
    "cryptography.fernet",
    "apscheduler.schedulers.asyncio",
    "prometheus_client",
    "pydantic_settings",
)


class Sizes(NamedTuple):
    """The bot's: logins claimed and not yet written at most, logins written a transaction,
    SMSC requests at once (bot.alerting.scheduling)."""

    batch: int
    write_batch: int
    concurrency: int


LEASE = timedelta(minutes=5)
NEXT_CHECK = timedelta(hours=1)
STATES = {False: "ok", True: "low"}  # as bot.storage.models.AccountState stores them

# SQLite's statements. PostgreSQL's are the same with its placeholders (`_numbered`), but for
# the claim's order: PostgreSQL refuses ORDER BY a column DISTINCT leaves out (as
# bot.storage.stats.claim_due).
CLAIM = """
UPDATE accounts SET lease_until = ?
WHERE lease_until IS NULL AND credentials_key IN (
    SELECT DISTINCT credentials_key FROM accounts
    WHERE next_check_at <= ? AND lease_until IS NULL
    ORDER BY next_check_at LIMIT ?
)
RETURNING id, login, threshold
"""
WRITE = """
UPDATE accounts SET state = ?, last_balance = ?, last_credit = ?, currency = ?,
    last_checked_at = ?, last_sample_at = ?, next_check_at = ?, lease_until = NULL, failures = 0
WHERE id = ?
"""
SAMPLE = "INSERT INTO balance_samples (account_id, taken_at, balance, credit) VALUES (?, ?, ?, ?)"
PG_CLAIM = """
UPDATE accounts SET lease_until = $1
WHERE lease_until IS NULL AND credentials_key IN (
    SELECT credentials_key FROM accounts
    WHERE next_check_at <= $2 AND lease_until IS NULL
    GROUP BY credentials_key ORDER BY min(next_check_at) LIMIT $3
)
RETURNING id, login, threshold
"""
Rows = list[tuple[Any, ...]]


def _numbered(sql: str) -> str:
    """The statement with asyncpg's placeholders ($1, $2, ...) for SQLite's (?)."""
    *parts, last = sql.split("?")
    return "".join(f"{part}${n}" for n, part in enumerate(parts, 1)) + last


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


class _SQLite:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    @staticmethod
    def time(moment: datetime) -> Any:
        """As the bot stores times on SQLite (bot.storage.models.UTCDateTime)."""
        return _naive_utc(moment).isoformat(" ", "microseconds")

    async def claim(self, lease: datetime, now: datetime, limit: int) -> Rows:
        claimed = await self._db.execute_fetchall(CLAIM, (self.time(lease), self.time(now), limit))
        await self._db.commit()
        return list(claimed)

    async def write(self, rows: Rows, samples: Rows) -> None:
        await self._db.executemany(WRITE, rows)
        await self._db.executemany(SAMPLE, samples)
        await self._db.commit()


class _Postgres:
    WRITE, SAMPLE = _numbered(WRITE), _numbered(SAMPLE)

    def __init__(self, db: Any) -> None:  # an asyncpg.Connection
        self._db = db

    @staticmethod
    def time(moment: datetime) -> Any:
        """As the bot stores times on PostgreSQL: naive UTC timestamps."""
        return _naive_utc(moment)

    async def claim(self, lease: datetime, now: datetime, limit: int) -> Rows:
        claimed = await self._db.fetch(PG_CLAIM, self.time(lease), self.time(now), limit)
        return [tuple(row) for row in claimed]

    async def write(self, rows: Rows, samples: Rows) -> None:
        async with self._db.transaction():
            await self._db.executemany(self.WRITE, rows)
            await self._db.executemany(self.SAMPLE, samples)


@asynccontextmanager
async def _connected(database: str) -> AsyncIterator[_SQLite | _Postgres]:
    """One connection: to an SQLite file, or to a PostgreSQL database (SQLAlchemy's URL)."""
    if database.startswith("postgresql"):
        import asyncpg  # here: the bot on SQLite never loads it, so neither does this on SQLite

        db = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            yield _Postgres(db)
        finally:
            await db.close()
        return
    async with aiosqlite.connect(database) as lite:
        await lite.execute("PRAGMA journal_mode=WAL")
        yield _SQLite(lite)


async def sweep(database: str, url: str, sizes: Sizes) -> dict[str, float]:
    endpoint = f"{url}/sys/balance.php"
    slots = asyncio.Semaphore(sizes.concurrency)
    turn = asyncio.Lock()  # one connection: SQLite's one writer
    # Each login's accounts (id, threshold), and SMSC's answer for it.
    answered: list[tuple[list[tuple[int, str | None]], dict[str, str]]] = []
    accounts = 0
    async with _connected(database) as db, AiohttpTransport() as http:

        async def write() -> None:
            batch = answered[:]
            answered.clear()
            now = datetime.now(UTC)
            stamp, next_check = db.time(now), db.time(now + NEXT_CHECK)
            rows, samples = [], []
            for accounts_of_login, answer in batch:
                balance = Decimal(answer["balance"])
                credit = str(Decimal(answer.get("credit", "0")))
                currency = answer.get("currency")
                for account_id, threshold in accounts_of_login:
                    # The one rule no bot can go without: under the threshold, it alerts.
                    low = threshold is not None and balance < Decimal(threshold)
                    state = STATES[low]
                    values = (str(balance), credit, currency, stamp, stamp, next_check)
                    rows.append((state, *values, account_id))
                    samples.append((account_id, stamp, str(balance), credit))
            async with turn:
                await db.write(rows, samples)

        async def check(login: str, accounts_of_login: list[tuple[int, str | None]]) -> None:
            form = {"login": login, "psw": password(int(login[4:])), "fmt": "3", "cur": "1"}
            request = httpx.Request("POST", endpoint, data=form)  # through httpx's transport,
            async with slots:  # as the bot's client sends
                response = await http.handle_async_request(request)
                try:
                    body = await response.aread()
                finally:
                    await response.aclose()
            answered.append((accounts_of_login, json.loads(body)))
            if len(answered) >= sizes.write_batch:
                await write()

        # Started: the caller may now watch (bench.profile) and say go.
        print("ready", flush=True)
        sys.stdin.readline()
        cpu, wall = time.process_time(), time.monotonic()
        tasks = []
        while True:
            now = datetime.now(UTC)
            async with turn:
                claimed = await db.claim(now + LEASE, now, sizes.batch)
            if not claimed:
                break
            accounts += len(claimed)
            by_login = defaultdict(list)
            for account_id, login, threshold in claimed:
                by_login[login].append((account_id, threshold))
            tasks += [asyncio.create_task(check(*item)) for item in by_login.items()]
        await asyncio.gather(*tasks)
        if answered:
            await write()
        return {
            "cpu": time.process_time() - cpu,
            "wall": time.monotonic() - wall,
            "accounts": accounts,
            # VmHWM: getrusage's ru_maxrss would count the parent's memory before the exec too.
            "peak_rss": sample(os.getpid()).peak_rss,
        }


if __name__ == "__main__":
    import_aiogram()  # as the bot imports it
    for module in STACK:
        importlib.import_module(module)
    database, url, *sizes = sys.argv[1:]
    print(json.dumps(asyncio.run(sweep(database, url, Sizes(*map(int, sizes))))))
