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

The PostgreSQL sweeps run the same 10,000 accounts on a real PostgreSQL and Redis started from
their wheels (`tests/real_servers.py`, as the tests do), a new database and an emptied Redis for
each: one replica, then two, each in webhook mode with the same DATABASE_URL and REDIS_URL and
the default LEASE_SECONDS. Their bot CPU is the replicas' together; the servers' CPU (the
postmaster with its backends, and Redis) is shown apart. "Checked more than once" is counted by
a trigger the benchmark adds to that database: a row each time a check's result is written (its
lease cleared), so an account written twice shows even when its balance, unchanged, took no
second history sample (samples are taken at most once an hour for the same balance). Growth
is one bot on SQLite at 1,000, 10,000 (the runs above) and 100,000 accounts: its sweep, then
idle with nothing due; memory is the peak through the sweep, less the bare-import floor.

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
  version aiogram allows, 2.12 takes ≈ 40 MB more and 2.10 twice as much), aiohttp included.
  Above it (RSS deltas of importing each after aiogram): SQLAlchemy with its ORM and asyncio
  layer ≈ 18 MB, aiosqlite and its dialect ≈ 2 MB, cryptography ≈ 7 MB (its Rust extension,
  which carries an OpenSSL of its own), httpx ≈ 1 MB (≈ 5 MB where click and rich are installed,
  as the dev tools are here but not in the image: httpx then loads its command line too),
  APScheduler, prometheus-client, pydantic-settings ≈ 1 MB each, the bot's own modules ≈ 5 MB:
  ≈ 41 MB of imports; start-up makes ≈ 7 MB more (≈ 48 MB above the floor before the sweep).
  Alembic (≈ 11 MB with Mako and Pygments) is imported only when the schema is behind
  (bot.storage.engine.SCHEMA_REVISION); matplotlib and numpy (≈ 40 MB) only when a /history
  chart is first drawn. A tracemalloc snapshot at idle after the 10,000-account sweep, tracing
  from the end of the imports: ≈ 5 MB of Python objects in all (peak ≈ 10 MB during the
  sweep), of which ≈ 1.7 MB the SMSC guard's state per login (1,000 logins) and ≈ 1.7 MB
  SQLAlchemy's statement cache; nothing else over 0.1 MB. The sweep still adds ≈ 15 MB of RSS:
  CPython and glibc keep the arenas its short-lived objects used (CPython frees an arena only
  when all of it is free), and SQLite's page cache (≤ 2 MB a connection). With one glibc arena
  (MALLOC_ARENA_MAX=1, as the Docker image sets) the peak is ≈ 3.5 MB lower (60 against 63.5 MB
  above the floor at 10,000 accounts, 3 runs each, no CPU difference through the noise); the
  table is measured without it.
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
  that raises them. Bot CPU per delivered notification is the bot's CPU from the end of the
  sweep (every account checked) to the last alert, over the alerts delivered meanwhile; it
  includes what the idle bot spends over those ≈ 37 s (≈ 0.3 ms a notification at 27 a
  second). Claims are read as plain rows, outcomes written by plain statements as soon as
  known (those answered during a write go together in the next), the sendMessage built
  unvalidated from the stored row and its answer read for the message id only. What remains
  is a transaction per send (≈ 1 ms of CPU on aiosqlite: several trips to its thread and a WAL
  fsync at `synchronous=FULL`) and aiogram's HTTP round trip. Writing the outcomes of 0.2 s
  together cut it to ≈ 2.6 ms, but a sent mark committed that much later is a duplicate after
  a crash (`test_pending_alerts_survive_sigkill_and_go_out_once` caught it), so it stays one
  commit per answer.
- **Backlog after a restart.** Alerts queued for 10 chats while the bot was down: nothing
  wakes the outbox, so each chat's messages go out at the outbox's own pace. Telegram allows
  a private chat 1 message a second; the worker sleeps until the first chat held by that gap
  is free (the pacer tells when), not a fixed 1 s poll, which made it 1.4-1.8 s.
- **Idle.** Two indexed queries a second (due accounts, due notifications), APScheduler's tick
  and aiogram's long poll.
- **PostgreSQL, one replica.** Bot CPU per account is what SQLite's is plus the fleet's shared
  guard: without REDIS_URL the same sweep on PostgreSQL took 0.34-0.36 ms an account, on a run
  where SQLite took 0.36-0.45 ms (the database work moves to the server, asyncpg costs about
  what the in-process SQLite did); with REDIS_URL each SMSC request also goes through the
  guard's state in Redis (`bot/fleet/limits.py`: the login's lock taken, kept alive by a task
  and released, and its scripts for the standing, the place in the window and the cached
  balance), ≈ 1 ms of the bot's CPU per login, ≈ 0.1 ms per account at ten accounts a login.
  PostgreSQL and Redis take two thirds as much again in their own processes. The wall time is
  the machine's: the bot, PostgreSQL, Redis and the fakes share two cores, where SQLite's sweep
  had the bot on one core and the fakes on the other.
- **PostgreSQL, two replicas.** Each replica claims up to 500 logins' accounts a second with a
  conditional UPDATE of rows locked in one order (`bot/storage/stats.py`, `claim_due`), so
  they split the sweep login by login without a double; the guard in
  Redis keeps one request per login for the fleet. On two cores two replicas cannot be faster
  than one: their CPU adds up (both look for due work, both start), and the wall time is what
  the machine's two cores give the four processes and the fakes. With a core per replica the
  sweep's CPU would divide between them.
- **Growth.** CPU per account checked is flat: a check's cost is per login and per account
  written, not per account kept. Memory grows with the sweep's working set, not with the
  accounts at rest: up to 500 logins' checks in flight, their accounts loaded 50 logins to a
  transaction, SQLAlchemy's identity map and statement cache, and the fakes' answers; CPython
  keeps what it freed in its arenas, so idle RSS stays near the sweep's peak. Most of the RSS
  above the floor is fixed (the imports, ≈ 41 MB; see RSS above). Idle CPU does
  not grow with accounts: the looks for due work are indexed and find nothing.
- **Goals for several replicas** (reported, not asserted). Two replicas: no account checked
  twice and no error 9, met (the same holds in `tests/test_e2e_fleet.py`). PostgreSQL's bot CPU
  per account within 1.5x of SQLite's: missed with REDIS_URL (1.5-1.8x in these runs), met
  without it (≈ 1x, above): the excess is the guard's state in Redis, a lock and several
  scripts per SMSC request, which one Lua script per decision would shrink. At 100,000
  accounts, idle CPU under 2 % of a core: met (< 1 %, as at 1,000). Peak RSS above the floor
  under 100 MB: met, narrowly (≈ 95 MB): ≈ 0.3 MB per 1,000 accounts on ≈ 65 MB fixed, so
  about 120,000 accounts on one process would reach it.
- **The fakes** run in the benchmark's own process: beside one bot, on the second core; beside
  two replicas, PostgreSQL and Redis, on a machine of two cores, they compete with them.
- **Noise.** Other work ran on the machine during this run (other test suites: a load average
  of 3-4 on 2 cores); CPU per account then varies by ± 15 % from run to run of the same code
  (0.33-0.45 ms for the SQLite sweep in runs minutes apart), wall times more. Ratios of figures
  from the same run are the sturdier ones.
"""
