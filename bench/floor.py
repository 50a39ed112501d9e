"""A sweep's I/O with none of the bot: what httpx and aiosqlite alone cost to check every
account once, as any bot keeping the same guarantees must. Due accounts are leased 500 logins
at a time, their thresholds read as they are leased; SMSC is asked once per login (50 at a
time, a POST as the bot's); each account's balance, state against its threshold, times and
next check are written with a history sample, 50 logins' worth to a transaction (the sizes
are the bot's checks', bot.alerting.scheduling). Nothing else: no other rule, no alerts, no
guard, no decryption, no SQLAlchemy, no logging; raw statements on one connection. The bot's
sweep CPU is read against this, taken on the same machine in the same run.

python -m bench.floor DATABASE SMSC_URL   # prints "ready", starts at a line on stdin, then
                                          # prints {"cpu": s, "wall": s, "accounts": n}
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from subprocess import PIPE, Popen

import aiosqlite
from cryptography.fernet import Fernet
from httpx_aiohttp import HttpxAiohttpClient

from bench.data import BALANCE, Layout, Probe, login_name, password, seed_now
from bench.rows import CHECK_CONCURRENCY
from bot.alerting.scheduling import BATCH, WRITE_BATCH
from tests.fake_smsc import FakeSmsc

LEASE = timedelta(minutes=5)
NEXT_CHECK = timedelta(hours=1)
STATES = {False: "ok", True: "low"}  # as bot.storage.models.AccountState stores them

CLAIM = """
UPDATE accounts SET lease_until = :lease
WHERE lease_until IS NULL AND credentials_key IN (
    SELECT DISTINCT credentials_key FROM accounts
    WHERE next_check_at <= :now AND lease_until IS NULL
    ORDER BY next_check_at LIMIT :limit
)
RETURNING id, login, threshold
"""
WRITE = """
UPDATE accounts SET state = ?, last_balance = ?, last_credit = ?, currency = ?,
    last_checked_at = ?, last_sample_at = ?, next_check_at = ?, lease_until = NULL, failures = 0
WHERE id = ?
"""
SAMPLE = "INSERT INTO balance_samples (account_id, taken_at, balance, credit) VALUES (?, ?, ?, ?)"


def _text(moment: datetime) -> str:
    """As the bot stores times on SQLite (bot.storage.models.UTCDateTime)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


async def sweep(database: str, url: str) -> dict[str, float]:
    endpoint = f"{url}/sys/balance.php"
    slots = asyncio.Semaphore(CHECK_CONCURRENCY)
    turn = asyncio.Lock()  # SQLite's one writer
    # Each login's accounts (id, threshold), and SMSC's answer for it.
    answered: list[tuple[list[tuple[int, str | None]], dict[str, str]]] = []
    accounts = 0
    async with aiosqlite.connect(database) as db, HttpxAiohttpClient() as http:
        await db.execute("PRAGMA journal_mode=WAL")

        async def write() -> None:
            batch = answered[:]
            answered.clear()
            now = datetime.now(UTC)
            stamp, next_check = _text(now), _text(now + NEXT_CHECK)
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
                await db.executemany(WRITE, rows)
                await db.executemany(SAMPLE, samples)
                await db.commit()

        async def check(login: str, accounts_of_login: list[tuple[int, str | None]]) -> None:
            form = {"login": login, "psw": password(int(login[4:])), "fmt": "3", "cur": "1"}
            async with slots:
                response = await http.post(endpoint, data=form)
            answered.append((accounts_of_login, json.loads(response.content)))
            if len(answered) >= WRITE_BATCH:
                await write()

        # Started: the caller may now watch (bench.profile) and say go.
        print("ready", flush=True)
        sys.stdin.readline()
        cpu, wall = time.process_time(), time.monotonic()
        tasks = []
        while True:
            now = datetime.now(UTC)
            values = {"lease": _text(now + LEASE), "now": _text(now), "limit": BATCH}
            async with turn:
                claimed = await db.execute_fetchall(CLAIM, values)
                await db.commit()
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
) -> dict[str, float]:
    """The bench's sweep of `layout` (every account due, SMSC answering in `latency`), done by
    `sweep` in a process of its own on a database seeded as the bot's, `watch`ed by its pid
    from its start to its end."""
    with tempfile.TemporaryDirectory(prefix="smsc-floor-") as tmp, FakeSmsc() as smsc:
        smsc.latency = latency
        for login in range(layout.logins):
            smsc.add_account(login_name(login), password(login), balance=BALANCE)
        database = Path(tmp) / "floor.db"
        url = f"sqlite+aiosqlite:///{database}"
        seed_now(url, Fernet.generate_key().decode(), smsc.url, layout)
        probe = Probe(url)
        try:
            probe.make_due()
        finally:
            probe.close()
        command = [sys.executable, "-m", "bench.floor", str(database), smsc.url]
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
