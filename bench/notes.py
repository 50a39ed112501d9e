"""What limits each figure: written under the table in BENCHMARKS.md."""

NOTES = """
## How it is measured

Each scenario starts the real bot (`python -m bot`) against loopback fakes of SMSC
(`tests/fake_smsc.py`, answering after 50 ms) and of the Bot API (`tests/fake_telegram.py`),
with a database seeded beforehand by the project's migrations and models: account j belongs to
chat j / 5 and uses login j mod (accounts / 10), every account last checked an hour ago and
found OK, its last history sample two hours old (so each check takes a sample and studies the
history, the costlier path). A sweep starts when every account is made due at once, and ends
when every account has a new `last_checked_at`. CPU and RSS are the bot process's, read from
`/proc`. Latencies run from the moment an update is queued at the fake Bot API to the moment
the answer reaches it. The naive way is `bench/naive.py`, in a process of its own.

## What limits each figure

- **Sweep: wall time and CPU per account.** The bot's own CPU, on one core. Checks ask SMSC
  without touching the database and queue what they learn; whichever check takes the write
  turn next writes what is waiting, up to 50 logins, in one transaction
  (`Checks._write_waiting`): one read of those accounts, one of their history, one INSERT of
  the new samples and the accounts' UPDATE. What is left per account is SQLAlchemy's unit of
  work and the spend forecast; per SMSC request, httpx over aiohttp's pool (httpcore's own
  pool cost ≈ 2 ms of CPU a request at 50 side by side, aiohttp's ≈ 0.8 ms). A login of ten
  accounts so costs ≈ 3 ms of CPU: with SMSC answering in 50 ms the sweep is still bounded by
  the bot's CPU, a few times the floor that SMSC latency and the 50 concurrent checks set;
  with SMSC answering in 200 ms, as it may to a server far from it, the sweep comes within
  1.5 s of that floor, most of it the dispatcher's: due accounts are looked for once a
  second, 500 logins at a time. SMSC requests are one per distinct login, however many
  chats watch it.
- **Peak and idle RSS.** Mostly imports. aiogram builds pydantic validators and serializers for
  every Bot API type and method when imported: a bare interpreter that imports aiogram and
  nothing else holds the "floor" shown (aiogram issue 1513; pydantic 2.13 is the leanest
  version aiogram allows, 2.12 takes ≈ 40 MB more and 2.10 twice as much). SQLAlchemy ≈ 30 MB,
  Alembic ≈ 11 MB, aiohttp ≈ 9 MB, cryptography ≈ 7 MB and the rest make ≈ 210 MB at start;
  10,000 accounts add ≈ 20 MB (ORM objects of the checks being written, SQLAlchemy's statement
  cache). matplotlib and numpy (≈ 40 MB) are imported only when a /history chart is first
  drawn. With aiogram at ≈ 165 MB, the 200 MB target leaves ≈ 35 MB for all the rest, which
  SQLAlchemy and its async layer nearly fill alone: not reachable without a leaner aiogram.
- **Naive.** One request per account through the same SMSC client, the same 50 at a time, and
  no database work: its wall time is mostly its own CPU for ten times the requests. SMSC sees
  ten times the requests, and every login spends all ten of its requests for the minute, so any
  second look within it (a /balance, a retry) would be refused with error 9.
- **/balance, all at once.** The throughput of the bot's one event loop: an update costs ≈ 6 ms
  of CPU, about half of it aiogram's (parsing the update, its middlewares, the sendMessage call
  and its answer) and the rest the chat's record and accounts read, the credentials decrypted,
  the cached balances recorded, and the text. (aiogram also rebuilt the pydantic model of
  sendMessage's answer after garbage collections, ≈ 5 ms each time; `bot/telegram/session.py`
  keeps it built.) A burst's latency is queueing: the last of 200
  waits for the 199 before it (p99 ≈ 200 / updates per second), so no burst of 200 can meet
  50 ms on one core; the target applies to the steady rate below.
- **/balance, steady.** Below that throughput an update waits for nobody: its latency is its own
  cost and the long poll's round trip. Full garbage collections over the ≈ 300,000 objects
  from imports took ≈ 250 ms; `gc.freeze()` after start-up takes those out of collections.
- **Alert fan-out.** Telegram's 30 messages a second, which the outbox paces to ("sends per
  second"). Sends answered 429 take places too, so 1,000 alerts with 5 % refused once make 1,050
  sends (a 35 s floor, 95 % of the allowance at best); the first alerts wait for the sweep
  that raises them.
- **Idle.** Two indexed queries a second (due accounts, due notifications), APScheduler's tick
  and aiogram's long poll.
- **The fakes** run in the benchmark's own process, which has the second core to itself.
"""
