"""A sweep's I/O with none of the bot: what httpx and the database's driver (aiosqlite, or asyncpg
on PostgreSQL) alone cost to check every account once, as any bot must that leases what it
checks and asks SMSC once per login. Due accounts are leased 500 logins at a time, their
thresholds read as they are leased; SMSC is asked once per login (50 at a time, a POST as the
bot's); each account's balance, state against its threshold, times and next check are written
with a history sample, 50 logins' worth to a transaction (the sizes are the bot's checks',
bot.alerting.scheduling). Nothing else: no other rule, no alerts, no guard, no decryption, no
second read of the accounts at the write (the bot's, which leaves alone what changed during the
request), no SQLAlchemy, no logging; raw statements on one connection. The bot's sweep CPU and
memory are read against this, taken on the same machine in the same run. The sweep runs in a
process of its own (bench.floor_io), which imports the bot's stack but none of the bot.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from subprocess import PIPE, Popen

from cryptography.fernet import Fernet

from bench.data import BALANCE, Layout, Probe, login_name, password, seed_now
from bench.rows import CHECK_CONCURRENCY
from bot.alerting.scheduling import BATCH
from bot.alerting.writing import WRITE_BATCH
from tests.fake_smsc import FakeSmsc


def floor_sweep(
    layout: Layout,
    latency: float,
    watch: Callable[[int], AbstractContextManager[object]] = lambda pid: nullcontext(),
    *,
    database: str | None = None,
) -> dict[str, float]:
    """The bench's sweep of `layout` (every account due, SMSC answering in `latency`), done by
    bench.floor_io in a process of its own on a database seeded as the bot's (`database`, an empty
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
        sizes = [str(size) for size in (BATCH, WRITE_BATCH, CHECK_CONCURRENCY)]
        command = [sys.executable, "-m", "bench.floor_io", database or str(file), smsc.url, *sizes]
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
