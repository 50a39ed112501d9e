"""The straightforward way, for comparison: one SMSC request per account, no sharing between
chats that watch the same login, no cache, no per-login pacing; only a bound on concurrency
(the bot's own, 50). Prints what SMSC saw as JSON. Run by bench.scenarios in its own process,
so it does not share a GIL with the fake SMSC.

    python -m bench.naive --url http://127.0.0.1:PORT --logins 1000 --accounts 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench.data import login_name, password
from bot.smsc.client import Credentials, SmscClient
from bot.smsc.errors import SmscError, SmscRateLimited


async def sweep(url: str, logins: int, accounts: int, concurrency: int) -> dict[str, float]:
    slots = asyncio.Semaphore(concurrency)
    rate_limited = other_errors = 0

    async def check(client: SmscClient, account: int) -> None:
        nonlocal rate_limited, other_errors
        login = account % logins
        async with slots:
            try:
                await client.fetch_balance(Credentials(url, login_name(login), password(login)))
            except SmscRateLimited:
                rate_limited += 1
            except SmscError:
                other_errors += 1

    async with SmscClient(backups={}) as client:
        start = time.monotonic()
        await asyncio.gather(*(check(client, account) for account in range(accounts)))
        wall = time.monotonic() - start
    return {
        "wall": wall,
        "requests": accounts,
        "rate_limited": rate_limited,
        "other_errors": other_errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.naive")
    parser.add_argument("--url", required=True)
    parser.add_argument("--logins", type=int, required=True)
    parser.add_argument("--accounts", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(sweep(args.url, args.logins, args.accounts, args.concurrency))))


if __name__ == "__main__":
    main()
