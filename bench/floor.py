"""A sweep's I/O with none of the bot: what httpx and the database's driver (aiosqlite, or
asyncpg on PostgreSQL) alone cost to check every account once, as any bot keeping the same
guarantees must. Due accounts are leased 500 logins at a time, their thresholds read as they
are leased; SMSC is asked once per login (50 at a time, a POST as the bot's); each account's
balance, state against its threshold, times and next check are written with a history
sample, 50 logins' worth to a transaction (the sizes are the bot's checks',
bot.alerting.scheduling). Nothing else: no other rule, no alerts, no guard, no decryption, no
SQLAlchemy, no logging; raw statements on one connection. The bot's sweep CPU is read against
this, taken on the same machine in the same run.

python -m bench.floor DATABASE SMSC_URL   # an SQLite file or a PostgreSQL URL; prints
                                          # "ready", starts at a line on stdin, then prints
                                          # {"cpu": s, "wall": s, "accounts": n}
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from subprocess import PIPE, Popen
from typing import Any

import aiosqlite
import asyncpg
import httpx
from cryptography.fernet import Fernet
from httpx_aiohttp import AiohttpTransport

from bench.data import BALANCE, Layout, Probe, login_name, password, seed_now
from bench.rows import CHECK_CONCURRENCY
from bot.alerting.scheduling import BATCH, WRITE_BATCH
from tests.fake_smsc import FakeSmsc

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

    def __init__(self, db: asyncpg.Connection) -> None:
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
        db = await asyncpg.connect(database.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            yield _Postgres(db)
        finally:
            await db.close()
        return
    async with aiosqlite.connect(database) as lite:
        await lite.execute("PRAGMA journal_mode=WAL")
        yield _SQLite(lite)


async def sweep(database: str, url: str) -> dict[str, float]:
    endpoint = f"{url}/sys/balance.php"
    slots = asyncio.Semaphore(CHECK_CONCURRENCY)
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
            if len(answered) >= WRITE_BATCH:
                await write()

        # Started: the caller may now watch (bench.profile) and say go.
        print("ready", flush=True)
        sys.stdin.readline()
        cpu, wall = time.process_time(), time.monotonic()
        tasks = []
        while True:
            now = datetime.now(UTC)
            async with turn:
                claimed = await db.claim(now + LEASE, now, BATCH)
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
        }


def floor_sweep(
    layout: Layout,
    latency: float,
    watch: Callable[[int], AbstractContextManager[object]] = lambda pid: nullcontext(),
    *,
    database: str | None = None,
) -> dict[str, float]:
    """The bench's sweep of `layout` (every account due, SMSC answering in `latency`), done by
    `sweep` in a process of its own on a database seeded as the bot's (`database`, an empty
    PostgreSQL database's URL, else an SQLite file of its own), `watch`ed by its pid from its
    start to its end."""
    with tempfile.TemporaryDirectory(prefix="smsc-floor-") as tmp, FakeSmsc() as smsc:
        smsc.latency = latency
        for login in range(layout.logins):
            smsc.add_account(login_name(login), password(login), balance=BALANCE)
        file = Path(tmp) / "floor.db"
        url = database or f"sqlite+aiosqlite:///{file}"
        seed_now(url, Fernet.generate_key().decode(), smsc.url, layout)
        probe = Probe(url)
        try:
            probe.make_due()
        finally:
            probe.close()
        command = [sys.executable, "-m", "bench.floor", database or str(file), smsc.url]
        with Popen(command, stdin=PIPE, stdout=PIPE, text=True) as process:
            assert process.stdin is not None and process.stdout is not None
            if process.stdout.readline() != "ready\n":
                raise RuntimeError("the floor's sweep did not start")
            with watch(process.pid):
                process.stdin.write("go\n")
                process.stdin.flush()
                out = process.stdout.read()
        if process.returncode:
            raise RuntimeError(f"the floor's sweep ended with {process.returncode}")
    result = json.loads(out)
    if result["accounts"] != layout.accounts:
        raise RuntimeError(f"the floor's sweep checked {result['accounts']} accounts")
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(sweep(sys.argv[1], sys.argv[2]))))
