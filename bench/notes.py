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

- **Sweep: wall time and CPU per account.** The bot's own CPU, on one core. Each account checked
  costs SQL statements through SQLAlchemy's async layer and aiosqlite, ≈ 0.8 ms of CPU each on
  this machine (the same statement costs ≈ 0.2 ms synchronously): its history read for the
  forecast, and its share of the check's one flush at commit. Reading the history of all of a
  check's accounts in one query is the next step towards 1 ms. On top of the CPU, after each
  check's write the bot leaves SQLite's writer free for a quarter of the time it held it
  (`WRITE_PAUSE` in `bot/scheduling.py`), so that commands can still write while every account is
  checked at once. SMSC latency and the 50 concurrent checks would allow the floor shown;
  "requests in flight" shows how far the sweep is from it. The SMSC requests are one per distinct
  login, however many chats watch it.
- **Peak and idle RSS.** Mostly imports: aiogram builds pydantic validators for every Bot API
  type (≈ 155 MB, aiogram issue 1513), matplotlib and numpy ≈ 40 MB more once a /history chart
  has been drawn (they are imported on first use), SQLAlchemy, Alembic, cryptography, Babel
  and the rest ≈ 50 MB. The accounts add ≈ 20-30 MB at 10,000 (the sessions and ORM objects
  of checks in flight).
- **Naive.** One request per account, the same 50 at a time, and no database work, so it ends
  sooner than the bot's sweep; but SMSC sees ten times the requests, and every login spends all
  ten of its requests for the minute, so any second look within it (a /balance, a retry) would
  be refused with error 9.
- **/balance, all at once.** The throughput of the bot's one event loop: an update costs ≈ 7-9 ms
  of CPU (middlewares and a database session, the chat's accounts, `Monitor.record` of each
  cached balance, the text, aiogram's call). A burst's latency is queueing: the last of 200
  waits for the 199 before it (p99 ≈ 200 / updates per second).
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
