"""What limits each figure: written under the table in BENCHMARKS.md."""

NOTES = """
## How it is measured

Each scenario starts the real bot (`python -m bot`) against loopback fakes of SMSC
(`tests/fake_smsc.py`, answering after 50 ms) and of the Bot API (`tests/fake_telegram.py`),
with a database seeded beforehand by the project's migrations and models: account j belongs to
chat j / 5 and uses login j mod (accounts / 10), every account last checked an hour ago and
found OK, its last history sample two hours old (so each check takes a sample and studies the
history, the costlier path). In a sweep every account falls due at once, 1.5 s after the
benchmark sets it so (as scheduled checks fall due: the bot has looked meanwhile and knows
when); it runs from that moment until every account has a new `last_checked_at`. One sweep
("each studying 192 hourly samples") seeds eight days of history before each account's last
sample, one an hour: what a study reads, and the least any account has after eight days.
CPU and RSS are the bot process's, read from `/proc`. Latencies run from the moment an update
is queued at the fake Bot API to the moment the answer reaches it. The naive way is
`bench/naive.py`, in a process of its own.

The rows "aiogram alone" (`bench/alone.py`) are what the library itself costs, measured in the
same run, so on the same hour of this machine (whose speed varies by a third from hour to hour):
a bare aiogram bot (one router, /balance answered with a text as long as the bot's answer for
five accounts; no database, no middleware) answering the same burst from the same fake Bot API,
and 270 alerts as long as the bot's, with two buttons, sent through aiogram's `Bot` at the
outbox's own pace (its pacer, `bot.alerting.pacing.MemoryPacer`: places six to a moment, 27
a second). The bot's figure less aiogram's is what the bot's own work costs.

Two more rows are floors of the same kind. "Its I/O alone" (`bench/floor.py`) is the big sweep done
with the least any bot that leases what it checks must do on this stack, in a process of its own,
on a database seeded as the bot's: the due accounts leased 500 logins at a time (one UPDATE ...
RETURNING, which reads their thresholds too), SMSC asked once per login (a POST through httpx's
transport over aiohttp, as the bot's client sends, 50 at a time), and each account's balance, its
state against its threshold, its times and next check written with a history sample (executemany),
50 logins to a transaction. Raw aiosqlite statements on one connection: no second read at the
write, no SQLAlchemy, no other rule, no guard, no alerts, no decryption, no logging. Its process
(`bench/floor_io.py`) imports, before the sweep, the stack the bot loads at start beside its own
modules (aiogram with its i18n, imported as the bot imports it, its models built when first
used; aiohttp's web server, SQLAlchemy's ORM and asyncio layer with the
aiosqlite dialect, cryptography, httpx, APScheduler, prometheus-client, pydantic-settings), and
none of the bot: its peak RSS ("the stack imported") is what any bot on this stack holds through
this sweep. On PostgreSQL the same through asyncpg, on a new database of the same server as the
replicas' (its CPU the floor process's alone, as the bot's is). "Each marked sent in SQLite" is
aiogram's sends as above, each answer then marked sent by one UPDATE in autocommit on a held
aiosqlite connection, as the outbox marks it: the one commit per answer that keeps a crash from
sending an alert twice.

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
Since 2026-12-03 11:00 the bot imports aiogram with its models built when first used (see Peak
and idle RSS), so its memory above that floor comes out below zero.

## What limits each figure

- **Sweep: wall time and CPU per account.** The bot's own CPU, on one core, and how soon each
  SMSC slot is used again. Checks ask SMSC without touching the database and queue what they
  learn; whichever check takes the write turn next writes what is waiting, up to 50 logins, in
  one transaction (`bot/alerting/writing.py`): one read of those accounts and their chats
  as plain rows (`bot/storage/records.py`: no ORM instance, no unit of work), one of their
  history, one INSERT of the new samples and one executemany UPDATE of the columns that
  changed, the last two at the driver (`bot/storage/direct.py`). Per account that leaves (see
  "Where the time goes"): SQLite's own work, ≈ 25-35 µs (the UPDATE moves the account in the
  next-check index, and the commit writes every page a batch touched, as a batch's accounts lie
  all over the table); SQLAlchemy's execution of the reads, and per-value type processing on
  the way in and out (Decimal as text, UTC datetimes); the
  monitor's rules and the spend forecast; and per SMSC request (one per ten accounts here),
  ≈ 0.5 ms in the client and the guard, ≈ 50 µs an account.
  **The floor.** The sweep's I/O alone, with none of the bot ("its I/O alone", see above),
  costs 0.043 ms of CPU an account in the run of 2026-12-03 03:27 (0.039 at 03:15, 0.052-0.060
  that morning; 0.047-0.063 in eleven runs on 2026-12-02 since it sends as the bot's client does,
  through httpx's transport; 0.065-0.111 before, through an httpx client). Its wall time is
  1.24-1.32 times the sweep's floor at 50 ms.
  **This round** (2026-12-02, after 11:30): the wall time at 50 ms went from 1.77-1.85 times
  the floor to 1.31-1.47 in the five full runs of this code (13:22, 13:53, 14:37, 14:54, and
  16:15, 1.38; 1.30-1.36 in six single sweeps at 13:20), within 0.18 of the floor's
  own ratio; CPU from 0.143-0.146 to 0.123-0.130 ms an account. Side by side on one slower
  hour (three sweeps each, alternating): 2.03-2.20 s and 0.163-0.179 ms before, 1.61-1.74 s and
  0.145-0.160 after. What changed, and what each was for:
  - SMSC's client sends through httpx's transport (over aiohttp's pool), not through an httpx
    client over it: the client's cookie jar, header merging, redirect and auth flows cost
    ≈ 0.2 ms of CPU a request (0.61 to 0.39 ms a request at 50 side by side; the guard adds
    ≈ 0.14, mostly the task and the wake-ups that keep a caller who gives up from failing the
    others). In the bot's sweep, 0.152-0.157 to 0.134-0.141 ms an account (A/B, three each).
  - SQLite's times: the text of a time written is remembered (`functools.lru_cache`, 1,024
    times: a batch writes a few distinct times, and `isoformat` cost ≈ 1.3 µs), and a time
    read is parsed with its zone (≈ 0.25 µs, where parsing and then `replace(tzinfo=UTC)` took
    ≈ 1.2). `write_outcomes` alone: 0.081-0.085 to 0.073-0.079 ms an account, 42-46 µs of it
    on the event loop's thread.
  - Claims of 50 logins, each part's checks started before the next is claimed: a claim of
    500 (5,000 accounts) held the event loop ≈ 70 ms, 500 decryptions included, before the
    first request went out.
  - Looks when room frees: a sweep larger than the 500 logins in flight was looked for again
    only at the next tick, and SMSC's slots ran dry meanwhile (0.1-0.2 s with no request, seen
    in the fake SMSC's arrival times). And claims take the write turn only, not the checks'
    queue for it: behind every check waiting to write, a claim waited 0.1-0.2 s.
  - Looks when the first account falls due: a look that finds nothing due reads when the first
    account will be (the same index probe), and the next look comes then if sooner than the
    tick. Accounts set due "now" from outside still wait for the next look (≤ 1 s since
    2026-12-03; ≤ 0.25 s before): the benchmark sets a sweep's accounts due 1.5 s ahead (half a
    second before), as scheduled checks fall due, and times the sweep from that moment (the
    first request then goes out ≈ 0.05 s after it, ≈ 0.25-0.3 s before).
  **What stands in the way of 0.10 ms** (the CPU target: met at 0.098 in the run of
  2026-12-03 03:27, missed at 0.116 in the run at 03:15 and at 0.108 and 0.112 in the two runs
  of 2026-12-02 at 19:14 and 18:49; single sweeps of that day's code 0.100-0.140 within the
  hour). Measured apart on 2026-12-02, before that evening's changes, each part alone in a
  process: requests through the guard and the client ≈ 0.53 ms of CPU a request, ≈ 53 µs an
  account (the floor's POST 0.39 of it); `write_outcomes` 0.073-0.079 ms an account (the rules
  ≈ 8 µs of it, 7.6 on records in memory; the plain records with every value converted ≈ 7, 34
  columns an account; the UPDATE ≈ 11; the statements' execution ≈ 16; SQLite's own thread
  ≈ 30); the claim and the decryption ≈ 2-3 µs. The floor (0.05-0.06) and what no check can
  skip (the guard ≈ 14 µs, the rules ≈ 8, the decryption) come to ≈ 0.08 ms an account. Then
  (14:30 and 15:30, `write_outcomes` alone, four pairs each) the UPDATE, the accounts' read and
  the samples' INSERT handed to aiosqlite, compiled once, saved ≈ 3 µs an account, and a second
  path to the database was not kept for that.
  **This session** (2026-12-02, after 18:10), two changes, measured apart and then together:
  - The garbage collector's young generation is collected every 10,000 container objects, not
    every 700 (`bot.memory.collect_less_often`). Counted in the bot process by `gc.callbacks`
    through a sweep: ≈ 165-185 young collections, 15 middle ones and a full one, 58-154 ms of
    CPU (6-15 µs an account, eight sweeps); now 3 young ones, 10-26 ms. A write of 50 logins
    holds 500 accounts' rows alive at once, and each young collection walked them again. Peak
    RSS through the sweep 224.4-224.5 against 223.7-223.8 MB (two pairs); the fan-out's CPU a
    notification did not move (1.73-1.97 against 1.78-1.95 ms, two pairs).
  - The UPDATE of the accounts and the INSERT of the samples go to the driver, on both databases
    and in the session's transaction (`executemany` in `bot/storage/direct.py`): each statement
    compiled once per set of columns, each value through its column's bind processor alone,
    where SQLAlchemy's own executemany worked out every row's parameters through its compiler.
    A record keeps the row it was read from and compares by position, identity first (a value
    never set again is the one read). The claims and `write_outcomes` alone, in one process on
    the benchmark's database (three pairs of three runs): 46-61 to 41-55 µs an account. Unlike
    the hand-over to aiosqlite tried at 15:30, this opens no second path (the same connection
    and transaction, on PostgreSQL too), and takes each row's values by name, past the compiled
    statement's building of every row's parameters.
  - Whole sweeps, this session's code against the code before it (fc33e5b), alternating on one
    hour: SQLite, eight pairs, 0.112-0.164 ms an account (mean 0.137) before and 0.114-0.140
    (mean 0.131) after, a change no larger than the noise; PostgreSQL, three pairs, 0.110-0.125
    before and 0.099-0.106 after, wall time 1.97-2.24 s before and 1.98-2.07 after.
  **2026-12-03** (after 01:50; this code's runs at 03:15 and 03:27).
  Timings on this machine swung by a third within minutes (the same phase of the write path,
  in process, 45 then 73 µs an account), too much to see a change of a few per cent, so the
  write path was measured by the instructions it runs (valgrind's callgrind, the claims and
  `write_outcomes` of 2,000 accounts on a copy of one seeded database, less the same process
  without them): the same code gives the same count within 0.1 %. Four changes took it from
  953 to 859 million instructions (-10 %, 477,000 to 430,000 an account):
  - An attribute of a SQLAlchemy `Row` is looked up only after Python's own lookup has failed
    and formatted its AttributeError (0.36 µs, against 0.03 by position): the claim read two
    of them for each account, the rules several of each account's chat. The claim's rows are
    unpacked, the chats read as records.
  - Records are made past `__init__` (1.4 µs against 2.5).
  - A login's accounts, claimed and checked together, fall due together again: one next check
    for the login and interval, where each account drew its own (a login's accounts then came
    due apart, and the first one due brought them all in).
  - History samples are NamedTuples, not frozen dataclasses (0.19 µs against 0.28 to make; a
    check that takes a sample reads the account's week of them, hundreds in a running bot).
  After the run at 03:27, amounts and SQLite's times are read through remembered functions, as
  times were already written: each value read, None included, cost a call of a Python function
  and is now mostly a lookup in C (859 to 834 million, 417,000 an account). Of the 430,000
  instructions an account before that, SQLite runs ≈ 91,000 (its VM rebuilds a 40-column
  row for the claim's UPDATE and again for the write's), libc ≈ 41,000 (half of it SQLite's
  mutexes, taken for each column read), CPython ≈ 237,000. A request through the guard and
  the client, counted the same way against a fake SMSC in another process, runs ≈ 1.39
  million instructions in the bot's process (a tenth of them an account here), 78 % of them
  in CPython (httpx and aiohttp), with the kernel's loopback TCP on top. In `python -m bench`
  at 03:15 (an hour on which the sweep at 200 ms cost 0.228 ms an account, 0.152 at
  03:27): SQLite 0.116 ms an account (floor 0.039), PostgreSQL 0.130 with one replica and
  0.111 with two, fan-out 1.74 ms a notification, idle RSS 67.3 MB above the floor (peak in
  the sweep 57.8; the stack alone 46.5). At 03:27: 0.098 (floor 0.043), 0.116 and
  0.126, 1.72, 69.0 (57.5; 46.3).
  What is left past the floor is spread thin. A py-spy profile of three sweeps (`--gil`: the
  samples of the thread that holds the GIL, 19:00): `write_outcomes` 30 % of them, in it the
  records and their changes ≈ 7 %, the values' conversions for the driver ≈ 5 %, the rules ≈ 5
  %; the SMSC requests through the guard ≈ 10 %; SQLAlchemy ≈ 15 % innermost (the IN lists
  expanded for each batch ≈ 2.5 %, the rows read ≈ 2 %); the event loop ≈ 11 %. No part is
  more than a few µs an account, and none is a physical limit: the target lies inside this
  machine's swing for the same code (0.100-0.140), so the figure is met or missed by the hour.
  Nor does SQLite's own part move: a commit writes every page its batch touched (≈ 3.5 µs an
  account); without an fsync a commit (`synchronous=NORMAL`) the CPU was the same, and
  checkpoints held back moved their cost to the reads (A/B, three and two pairs). Timed
  statement by statement in aiosqlite's thread (one sweep each, 15:10): 29.7 µs an account in
  the bot's sweep, 17.7 in the floor's. The claims, the UPDATEs, the INSERTs and the commits
  cost about the same in both (≈ 17 µs); the rest is the reads the floor does not make: the
  accounts still under lease read again at the write, with their chats and history (≈ 3.6 µs
  to run, most of 7.8 µs spent fetching rows), which keep a check from overwriting what a
  user or another process changed during its request.
  **2026-12-03, morning** (after 06:10; the table of then was the run at 07:39). Nothing on the
  sweep's own path changed. The looks for due accounts come once a second (see Idle). A race to
  insert one key (a daily job's claim, a new chat's first two updates) is settled by INSERT ...
  ON CONFLICT, not by a failed INSERT: SQLAlchemy's aiosqlite adapter leaves a failed
  statement's cursor to the garbage collector, pysqlite keeps that statement in use, and the
  collector reset it on the event loop's thread, which waited there for the connection's lock
  while the connection's own thread waited in SQLite's busy handler for a writer the loop had to
  commit: the whole bot stopped for busy_timeout (5 s), and that write failed "database is
  locked" (py-spy of a stalled round: the loop's thread in `sqlite3_reset` under
  `gc_collect_main`). From 06:50 to 07:12 an SQLite bot imported SQLAlchemy's PostgreSQL dialect
  with it (2.2 MB, in the runs at 06:58 and 07:10). The morning was slow on this machine: the
  sweep's floor 0.052-0.060 ms an account, against 0.039-0.043 at 03:15 and 03:27. Four runs
  (SQLite and its floor; PostgreSQL with one replica and two; the fan-out and its floor; idle
  CPU; idle RSS above the floor, the sweep's peak): 06:58 0.113 (0.052); 0.120, 0.098; 1.74
  (1.53); 0.17 %; 72.9 MB (61.8). 07:10 0.124 (0.059); 0.142, 0.144; 1.75 (1.46); 0.23 %; 74.5
  (62.6). 07:25 0.137 (0.052); 0.142, 0.170; 2.11 (1.87); 0.30 %; 68.8 (57.2). 07:39 (the
  table) 0.132 (0.060); 0.130, 0.109; 2.01 (1.51); 0.30 %; 71.7 (57.7). The bot's CPU over the
  floor's held at 2.1-2.6 for SQLite (2.3 at 03:27, 3.0 at 03:15): the misses are the hour's.
  Tried and not kept (2026-12-02): 1,000 logins in flight instead of 500, and 20 logins a
  write instead of 50, moved nothing beyond the noise (three pairs each; 20 cost more CPU); 200
  logins in flight saved ≈ 1 MB and cost ≈ 0.4 s of wall time. Working out a record's changes
  by identity before equality alone saved ≈ 0.3 µs an account (kept since, with the comparison
  by position above); as the difference
  of two dicts' items (in C) it costs more than the comprehension (4.1 against 2.8 µs a record:
  every value is hashed). uvloop as the event loop: a trip to aiosqlite's thread costs 25 µs of
  CPU there against 43, but a sweep makes ≈ 1,100 of them; 0.120-0.123 against 0.121-0.126 ms an
  account (two pairs of two sweeps), within the noise, for a loop beyond the stack. The sweeps a
  running bot makes later (every balance moved, so every account takes a sample again) cost
  what the first after a start does (0.129-0.134 against 0.124-0.140, three pairs, with little
  history to study: see the next paragraph): the first-time work (the secrets decrypted, the
  credentials hashed) is not what stands in the way.
  Due accounts are looked for once a second (four times before 2026-12-03), by a loop of the
  checks' own, with an index probe (≈ 0.8 ms of CPU when nothing is due), sooner when the first
  due account falls due before the next look, and again as soon as 50 logins' room frees while
  more is due. SMSC requests are one
  per distinct login, however many chats watch it.
  **2026-12-03, afternoon.** Counted in instructions (valgrind's cachegrind: the same on every
  run, where this machine's time swings by a third), the write path alone in process (2,000
  accounts of the bench's layout, four writes of 50 logins, less the same process with none):
  361,000 instructions an account before, 328,000 after two changes. The held accounts' read is
  built once, the claims' keys and their (key, lease) pairs as two IN lists (it was an OR of the
  leases built at every write): ≈ 1 %. With the pairs alone (15:00-15:08, the run at 15:01)
  SQLite scanned every account at each write, seen by timing each statement in aiosqlite's
  thread: that read took 142 ms of a sweep, 83 with the keys' index (`tests/test_storage.py`
  reads its query plan now), and the sweep of 100,000 accounts 0.180 ms of CPU an account, 0.121
  with it; PostgreSQL uses the index either way.
  A study of a history too short for a rate (under three readings) and with none three days old
  (so no anomaly) answers at once, without working out its moves: 8.0 µs a study to 2.6, ≈ 8 %
  of the write path here, where every account's history is one sample (with 192 samples the
  readings' times and turns, worked out inline, save 5-10 % of ≈ 130-140 µs). Of what is left,
  CPython's interpreter runs 64 % of the instructions, SQLite 13-20 %, mutexes and the GIL's
  hand-offs to aiosqlite's thread 9 %; by time (py-spy, 2 kHz, three runs), the UPDATE's
  changes and parameters 26 %, the records read 20 %, the studies 18 % (33 % before), the rules
  ≈ 10 %. Reading the accounts at the driver instead, with no SQLAlchemy result, took 3.6 % of
  the instructions off: not kept for a second path beside Core's. SQLite's commits without
  waiting for the disk (`synchronous=NORMAL` in WAL mode, which a power cut can undo): three
  pairs of sweeps and three of fan-outs, nothing clear through the noise (0.108-0.156 against
  0.118-0.128 ms an account; 1.01-1.17 against 1.10-1.46 ms a notification), so every commit
  still waits for the disk. A larger page cache for SQLite (2026-12-03 17:20, single sweeps):
  at 10,000 accounts nothing through the noise (16 and 64 MB a connection against the default
  2 MB); at 100,000, 64 MB took 0.100-0.105 ms an account against 0.123-0.124 in two pairs,
  then 0.143 against 0.151 in a slow moment, for 79 MB more peak RSS (each connection keeps a
  cache of its own), and 16 MB nothing. Not kept. In the full sweep, five
  single sweeps side by side with the code before showed no difference through the noise
  (0.139-0.174 against 0.149-0.163 ms an account); the runs at 15:01 and 15:09 had
  the bot at 1.69 and 1.95 times its floor (0.125 against 0.074, 0.119 against 0.061), against
  2.0-2.4 times in the runs of 11:24-13:39. A
  sweep that takes no sample (the same 10,000 swept again, every balance as it was, the
  guard's cache set to 1 s so that SMSC is asked): 0.129-0.130 ms an account against 0.159 for
  the first sweep, on an hour the floor took 0.074. So on such an hour neither kind meets 0.10:
  the floor takes three quarters of it, and the guard, the rules, the re-read of what is held
  and the records take the rest and more. On the faster hour of 15:09 the floor took 0.061 and
  the bot 0.119: the same gap of ≈ 0.06 ms an account, which 0.10 leaves ≈ 0.04 for.
  **The requests, counted in instructions** (2026-12-03 16:20: cachegrind on a process that
  sends 500 requests 50 at a time, the fake SMSC in a process of its own): a bare aiohttp POST
  0.73-0.75 million instructions a request; the same through httpx's transport over aiohttp,
  as the floor sends, 1.06-1.07; the bot's client 1.13; through the guard 1.35. That is 0.6
  million a request above a bare POST (≈ 0.2 ms, ≈ 20 µs an account at ten accounts a login):
  httpx's request and response objects ≈ 0.3 million (the transport's glue, replaced by one of
  a few lines, only 0.03 of it), the client's form, timeout and parse 0.07, the guard 0.22 (its
  task of its own 0.08 of that). The client keeps httpx, as the stack has it and the client's
  tests stand on it (`httpx.MockTransport`): aiohttp itself, which aiogram brings, would take
  ≈ 10 µs an account off, not the 20 that 0.10 needs on the faster hours.
  **The sweep at 200 ms costs more an account** (0.107-0.236 in the full runs of 2026-12-03,
  against 0.115-0.152 at 50 ms) because its checks end spread over four seconds, not packed
  into one: counted in the bot's log (17:25, one sweep each), 113 writes of 8.8 logins on
  average at 200 ms, against 20 writes of 50 at 50 ms. Each write's statements and commit, and
  each wake-up of the event loop from idle, serve fewer accounts. Since 17:35 a check that
  ends while no write is under way, with fewer than 50 logins' outcomes waiting, holds its
  write back 50 ms (`WRITE_LINGER` in `bot/alerting/writing.py`), so that the checks ending
  about then go in the same write. Single sweeps side by side at 200 ms, on a slow hour:
  0.178-0.195 ms an account against 0.216-0.232 (three pairs), the wall time the same. Held
  back whether or not a write was under way, four pairs gave 0.108-0.136 against 0.148-0.171,
  but the sweep at 50 ms, whose writes follow one another, took longer in three pairs; held
  back only while no write is under way, it is unchanged at 50 ms (four pairs, 0.156-0.181
  against 0.166-0.176) and on PostgreSQL (three pairs, 0.105-0.133 against 0.105-0.126). In the
  full runs since, the sweep at 200 ms took 0.147-0.176 ms an account, against 0.187-0.228 in
  the two runs of that afternoon before it.
  Longer held back (2026-12-03 23:20, single sweeps alternating): 150 ms gave 0.117-0.133 ms
  an account at 200 ms against 0.133-0.146 (four pairs), and 0.165-0.180 against 0.195-0.231
  (three more, beside 100 ms's 0.177-0.209 and 250 ms's 0.157-0.194), the wall time the same;
  but at 50 ms 0.138-0.177 against 0.143-0.180, worse in three pairs of four, the wall time up
  to 0.2 s longer. Held back for three quarters of the check's own time (at most 250 ms), to
  suit both: at 200 ms 0.197-0.210 against 0.193-0.232 (three pairs), at 50 ms worse in eight
  pairs of ten (0.122-0.214 against 0.126-0.192); likely (not measured) because a check's time
  there is mostly its wait for the busy event loop, not SMSC's. Neither kept.
  **Trips to aiosqlite's thread** (2026-12-03 evening). Each call on an aiosqlite connection
  is a trip: the statement queued for the connection's thread, which wakes, runs it and wakes
  the event loop with the answer. On this machine a trip costs 47-77 µs of CPU (5,000 empty
  trips in a loop, both threads), most of it in the kernel's wake-ups, which valgrind's
  instruction counts above do not see; py-spy puts 4-6 % of a sweep's samples on the thread's
  wake-up of the loop alone (`_write_to_self`). A sweep of 10,000 accounts made ≈ 1,200 trips
  (counted by wrapping `aiosqlite.Connection._execute` in the bot, one sweep): SQLAlchemy's
  cursor takes four for a read (cursor, execute, fetch, close) and three for an executemany,
  a session's claim six, the pool rolled back each connection given back, committed or not,
  and the studies read their histories a hundred accounts at a time, four trips each. Now
  317: the claims run on the looks' held connection (one statement, its own transaction); the
  write's reads of the accounts and their chats and the studies' histories go to the driver in
  the write's own transaction (`bot.storage.direct.on`), their ids as one JSON list
  (`json_each`), so that the SQL is the same for any number and compiled once; the accounts
  are read by their credentials alone and their leases matched to the claims in Python (one
  writer: nothing to lock); executemany goes to the driver; and the pool rolls back only a
  connection still in a transaction (`bot.storage.sqlite`). The rows read at the driver are
  converted column by column through `map` (3.1 µs a row of 33 columns, against 6.0 value by
  value; reading at the driver was tried on 2026-12-02 and not kept because the conversion,
  value by value in Python, ate what the trips saved), and executemany's values the same way
  (0.52 µs a row, against 0.86). A study is settled at once when the last sample is an hour
  old or more (≈ 2 % of the sweep's samples went to the slots' arithmetic). Single sweeps of
  10,000 accounts side by side with the code before (9f6d385), alternating, on a slow hour
  (its floor 0.100-0.109 ms an account, against 0.039-0.078 the day before; the machine's
  kernel build changed between the two days): at 50 ms, 0.178-0.247 ms an account (mean 0.212)
  before and 0.148-0.189 (mean 0.171) after, five pairs, better in four and even in one; at
  200 ms no change through the noise (eleven pairs, mean 0.211 before and 0.207 after, 0.149-
  0.294 and 0.150-0.251), the wall time the same. On the faster hour after 20:00 (the floor
  0.056) the gain at 50 ms was smaller: eight pairs, 0.127-0.161 ms an account (mean 0.142)
  before and 0.118-0.146 (mean 0.129) after, better in seven, the wall time 1.36-1.73 s
  before and 1.27-1.54 after. A trip costs more when the machine is busy. The bot's CPU
  against its floor's in the full runs: 1.78 and 1.73 times in the slow runs of 19:24 and
  19:38, 2.20 in the fast one of 20:08 (0.123 against 0.056), 1.83-1.95 in the runs of the day
  before: the floor gains more than the bot from a faster hour.
  **SQLite's thread, statement by statement** (2026-12-03 22:50, two sweeps of the bot and two
  of its floor, the CPU time of each statement on aiosqlite's thread, by wrapping
  `aiosqlite.Connection._execute`; µs an account, the bot's then the floor's): the claims
  11.1-13.1 against 5.4-6.7 (the bot's join the chats, to leave out stopped ones, and return
  each account's encrypted secret; the floor's are three large ones); the write's read of the
  accounts still under lease 9.7-11.2, and of their chats and histories 2.2-2.7, against
  nothing; the UPDATE 8.7-10.5 against 7.5-7.9; the samples' INSERT 4.3-4.9 against 3.1-3.4;
  the commits 3.5-4.4 against 4.2-4.4. In all 41-49 against 21-22, of the bot's 164-199 µs an
  account in those sweeps (a slow moment: the floor's 82-90). The same statements cost more in
  the bot, whose event loop keeps the other core busy meanwhile. The part beyond the floor is
  the read of what the write must not overwrite (an account removed, stopped or taken over
  during its request is left alone) and the claim's care; neither is a statement too many.
- **Sweep with history** (new on 2026-12-03, 08:30). The other sweeps' accounts have no
  history, so the study a sample brings (the account's eight days of samples read, and its
  spend rate and anomaly worked out) cost them nothing. After eight days every account has at
  least 192 samples (one an hour), and a balance that moves is sampled at every check (768 at
  the default 15 minutes). With 192, the code of that morning: 2.57 ms of CPU an account, 26.1
  s for the sweep, peak RSS 254 MB (one sweep; in process, the write alone 2.6 ms an account,
  9.6 at 768 samples). Decimal seconds for every move, in three windows walked apart, were most
  of it. Now (1.00-1.27 ms in four single sweeps, 0.59-0.85 in the full runs since, peak 228 MB):
  - The forecast counts time in integer microseconds and keeps running totals of the falls,
    so a window's tally is two totals and its edge moves' shares; the rate and the anomaly
    share one pass over the readings (`forecast.study`). A study of 192 samples: ≈ 860 µs
    before, 146-157 now; the same answers on 20,000 random histories.
  - A study comes once an hour per account at most: at its first sample in an hour of its own
    (hours offset by account id, so a sweep's accounts take turns). A balance at rest is
    sampled hourly and so studied as before; one that moves studies once in four checks at the
    default interval, not at each.
  - The samples' index carries the balance (migration 0007): the week is read from the index
    alone, SQLite's part 130-160 µs an account against 360-400.
  - Histories are read 100 accounts at a time, by a statement built once. A write's 500 at
    once held ≈ 20 MB of samples (peak RSS 204 against 187 MB in process, 2,000 accounts with
    192 samples each; 184 at 50 a time, which cost ≈ 10 µs of CPU an account more, a query
    each). Built for each query, the statement cost ≈ 1 ms of CPU, and took the plain sweep
    from 0.126-0.149 to 0.154-0.234 ms an account at 50 a time.
  Where the 1 ms goes now (py-spy and per-thread CPU, one sweep): SQLite's thread 0.25 ms
  (192 rows an account, from the index); the rows into `Sample`s on the event loop ≈ 0.28
  (SQLAlchemy's rows and type processing, a datetime parsed and a Decimal made per row; read
  at the driver instead, 262-277 µs an account against 294-317 through SQLAlchemy, in
  process: not kept, a second path to the database for 12 % of that part); the study 0.15; the
  check itself as in the plain sweep. What
  an hour of checks costs an account at the default interval is then about four plain checks
  and one study (≈ 4 × 0.13 + 0.9 ≈ 1.4 ms, 0.35 a check), where the plain sweep's figure is
  0.13: the target of 0.10 a check holds for a history no dearer to study than an empty one,
  which takes running totals kept with each account (a schema of its own) in place of the week
  read again every hour. Not started.
- **Peak and idle RSS** (since 2026-12-03, 11:00). aiogram declares its 450-odd Bot API types
  with pydantic's `defer_build`, then builds every one at import (`aiogram/types/__init__.py`
  rebuilds each with the names their annotations import only for type checkers): ≈ 110 MB of
  pydantic-core validators and serializers, ≈ 42 MB of them Python objects (tracemalloc), the
  rest pydantic-core's own. That is most of the floor shown, a bare `import aiogram` (aiogram
  issue 1513, open). The bot imports aiogram through `bot.telegram.lazy_models`: those rebuilds
  skipped, and each aiogram module given the names its models' annotations use, so a model is
  built when first validated or dumped, from whichever model asks first (an Update, a method, a
  method's `Response[...]`), as it would have been at import. aiogram imported so holds ≈ 59
  MB (the row "aiogram imported as the bot does"); what every chat's update brings (the Update
  and all it holds, a message sent or edited, a button acknowledged, and their answers) is built
  with the bot's Bot API session at start, the message first (a model reuses a built model's
  schema and builds its own copy of one not yet built): ≈ 0.12 s and ≈ 8 MB. Any other model
  (a rare command's method, an update of a kind not seen yet) is built at its first use, once,
  in 1-60 ms. `tests/test_lazy_models.py` builds every aiogram model, and the bot's own made of
  them, on first use in a fresh interpreter, and checks that the running bot holds less than a
  bare `import aiogram`. In the run of 11:24: idle after the sweep and the burst 141.3 MB,
  24.2 below the bare-import floor (232.6, 67.1 above it, at 09:43), peak through the 100,000
  accounts' sweep 20.5 below it; the stack alone, imported as the bot imports it, peaks 59.9
  below. Against aiogram imported as the bot does (≈ 59 MB) the bot holds ≈ 80 MB more: the
  stack's other imports and the bot's own, as below. Side by side with the code before (three
  pairs of a 2,000-account sweep and two bursts): idle 134-138 MB against 230-234; the first
  burst after a start, once the session builds those models, 1.30-2.25 ms of CPU an update
  against 1.40-1.55 (2.25-3.05 while getUpdates' first answer still built the Update on the
  event loop); and four pairs of the 10,000-account sweep, 0.105-0.121 ms an account against
  0.103-0.125, peak RSS 126 MB against 222-224.
  Before (the rest of this paragraph, with "the floor" a bare `import aiogram` and the bot
  importing aiogram as that does): mostly imports. aiogram builds pydantic validators and
  serializers for every Bot API type and method when imported: a bare interpreter that imports
  aiogram and nothing else holds the "floor" shown (pydantic 2.13 is the leanest version
  aiogram allows, 2.12 takes ≈ 40 MB more and 2.10 twice as much), aiohttp included.
  Above it (RSS deltas of importing each after aiogram): SQLAlchemy with its ORM and asyncio
  layer ≈ 18 MB, aiosqlite and its dialect ≈ 2 MB, cryptography ≈ 7 MB (its Rust extension,
  which carries an OpenSSL of its own), httpx ≈ 1 MB (≈ 5 MB where click and rich are installed,
  as the dev tools are here but not in the image: httpx then loads its command line too),
  APScheduler, prometheus-client, pydantic-settings ≈ 1 MB each, the bot's own modules ≈ 5 MB:
  ≈ 41 MB of imports; start-up makes ≈ 7 MB more (≈ 48 MB above the floor before the sweep).
  Alembic (≈ 11 MB with Mako and Pygments) is never imported by the serving process: a schema
  found behind (bot.storage.engine.SCHEMA_REVISION) is migrated by a child process (≈ 10 MB
  less after a start on a new database); matplotlib and numpy (≈ 40 MB) only when a /history
  chart is first drawn. A tracemalloc snapshot at idle after the 10,000-account sweep, tracing
  from the end of the imports: ≈ 5 MB of Python objects in all (peak ≈ 10 MB during the
  sweep), of which ≈ 1.7 MB the SMSC guard's state per login (1,000 logins; ≈ 0.65 MB since
  its sliding windows are lists: an empty deque alone took ≈ 0.7 KB) and ≈ 1.7 MB
  SQLAlchemy's statement cache; nothing else over 0.1 MB. The sweep still adds ≈ 15 MB of RSS:
  CPython and glibc keep the arenas its short-lived objects used (CPython frees an arena only
  when all of it is free), and SQLite's page cache (≤ 2 MB a connection). bot.memory gives all
  threads one glibc arena (a thread's own kept what it freed) and hands freed heap back to the
  system after each full collection (malloc_trim, microseconds): after the sweep, a /balance
  burst and idle, ≈ 68 MB above the floor against ≈ 73 (3-4 runs each, no CPU difference
  through the noise). The burst of 200 /balance adds ≈ 8-12 MB of its own: babel's locale data
  on first use (≈ 4 MB of objects) and up to 15 SQLite connections at once. A smaller SQLite
  page cache (256 KiB) saved ≈ 1 MB at idle: not kept. Since the chat reader (see /balance)
  the burst opens no pooled connection, but answers twice as fast, so more at once: aiohttp
  keeps 70-120 connections to the Bot API open after it where it kept 40. Idle RSS in the two
  runs of 2026-12-02 with it: 72.1 MB above the floor (67.4-68.5 in the four before it); in
  seven paired runs of a sweep, the burst and idle, new against old, -1 to +9 MB, within
  1.5 MB in four.
  Neither a 128 KiB page cache for the reader nor 20 connections to the Bot API at most
  (aiogram's default is 100) moved it beyond that noise (two pairs each): not kept.
  **What stands in the way** (2026-12-02). The stack alone: the sweep's I/O in a process that
  imports what the bot loads at start and none of the bot ("its I/O alone", "peak RSS above the
  floor, the stack imported") peaks at 46.3 MB above the floor in the run of 2026-12-03 03:27
  (46.5 at 03:15, 46.4-46.7 that morning; 46.6-48.5 in ten runs on 2026-12-02): ≈ 39 MB of
  imports, ≈ 8-9 MB of the sweep's own I/O (aiohttp's connections and buffers, SQLite's page
  cache). The target leaves 2-3 MB past that for the bot itself: its own modules alone take more
  (5.1 MB imported after the stack, with what only they load: babel's date and number formats, the
  JSON log formatter, the log masking's automaton), before its guard's state (≈ 1.7 MB for 1,000
  logins), SQLAlchemy's statement cache (≈ 1.7 MB), babel's data (≈ 3.6 MB for English, its global
  data included, ≈ 5 MB more for Russian, loaded on first use) or a burst. At 03:27 the bot peaked
  at 57.5 MB above the floor through the sweep (11 MB past the stack's own), and held 69.0 after
  the /balance burst and at idle (57.7 and 71.7 at 07:39, 56.6 and 67.1 at 09:43). Both count
  ≈ 4 MB that only a checkout with the `dev` extra has: httpx
  loads its command line (click, rich, pygments) where those are installed; `pip install .` and the
  image hold that much less, the stack's figure as much as the bot's. What the burst adds, by
  tracemalloc in the bot (2026-12-03, traced from after the start, a snapshot after the sweep
  and one after the burst): 5.4 MB of objects, ≈ 10 MB of RSS. babel's data, 3.6 MB of it: the
  first number formatted loads babel's global data whole (2.2 MB; it looks up the locale's
  parent there), then English's own (1.4). The burst's last answer to getUpdates, 200 updates
  as aiogram's models (1.1 MB), which aiogram's polling loop holds until the next answer. The
  runs at 06:58 and 07:10 that day count 2.2 MB more: SQLAlchemy's PostgreSQL dialect, which an
  SQLite bot imported with the ON CONFLICT statements for an hour (see the sweep's notes). Tried
  and not kept: aiogram's
  `tasks_concurrency_limit=32` for polling held the burst's growth to 4-5 MB (8-14 without; two
  pairs, 400-415 updates a second against 439-454), but a cap for all chats lets 32 slow updates (a
  /balance waiting on a hanging SMSC, up to its 10 s timeout) hold up every other chat's; a 256 KiB
  page cache saved ≈ 1.8 MB at start and ≈ 1 MB through the sweep (two pairs), too little to decide
  the figure for a cost to reads at 100,000 accounts not measured.
- **Naive.** One request per account through the same SMSC client, the same 50 at a time, and
  no database work: its wall time is mostly its own CPU for ten times the requests. SMSC sees
  ten times the requests, and every login spends all ten of its requests for the minute, so any
  second look within it (a /balance, a retry) would be refused with error 9.
- **/balance, all at once.** The throughput of the bot's one event loop, so about one over the
  CPU an update costs: ≈ 1.5-4 ms now (≈ 4.5-5.7 before the chat reader below, 6-8 before the
  round before). Earlier rounds took out: a second query for the accounts; the commit, and the
  pool's rollback after it, of an update that changed nothing (a cached balance the account
  recorded already); the credentials decrypted and hashed for the guard's cache key (the guard
  finds them by the stored `credentials_key`, which the scheduled checks decrypted already: ≈ 40
  µs a login); a filter aiogram ran in a thread of its pool for every message (a bare `F`, now a
  `MagicData` coroutine); aiogram's log line for every update handled (now at DEBUG); babel
  wording the same amounts again (cached); pydantic rebuilding the model of sendMessage's answer
  after garbage collections, ≈ 5 ms each time (`bot/telegram/session.py` keeps it built). The
  chat's read is committed at once, so no update holds a pooled connection while it waits for
  SMSC or Telegram. **The chat reader** (2026-12-02): every update reads its chat with the
  chat's accounts, as objects for the handlers. Through a pooled ORM session that read took
  ≈ 1.5 ms of CPU one at a time and 2.7-3.4 ms with a burst's 200 in flight (measured in one
  process on the benchmark's database; 1.3-1.9 with a pool of one connection): six trips to
  aiosqlite's thread (checkout, cursor, execute, fetch, close, the pool's rollback), SQLAlchemy's
  execution and loading around each, and the waits for the pool's 15 connections, each a thread
  of its own. On SQLite it now goes through a connection held for the bot's life
  (`bot/storage/direct.py`): one statement, one trip, the rows made the session's objects as if
  its query had loaded them (`bot/storage/chats.py`), ≈ 0.7-1.0 ms at the same concurrency.
  A/B on the same hour, twice each: 179-186 updates a second at 5.35-5.6 ms an update before,
  332-411 at 2.5-2.95 after; about thirty bursts since, 242-429 a second (the slowest on an
  hour when the code before answered 187-249); `python -m bench` at 05:46 and 06:17 UTC, 423 and 251
  a second (2.45 and 4.10 ms an update, aiogram alone 884 and 619 in the same runs). On
  PostgreSQL the ORM reads as before (asyncpg makes no thread
  trips). A burst's latency is queueing: the last of 200 waits for the 199 before it (p99 ≈ 200
  / updates per second), so no burst of 200 can meet 50 ms on one core; the target applies to
  the steady rate below. aiogram alone answers the same burst two to three times as fast
  (619-1,052 a second in six runs on 2026-12-02), at ≈ 1-1.65 ms of CPU an update (the
  "aiogram alone" rows): the bot's own part is now ≈ 1.25-2.45 ms an update (the chat's read,
  the session, the services, i18n, the timers, the wording of five balances).
- **/balance, steady.** Below that throughput an update waits for nobody: its latency is its own
  cost and the long poll's round trip. Full garbage collections over the ≈ 300,000 objects
  from imports took ≈ 250 ms; `gc.freeze()` after start-up takes those out of collections.
- **Alert fan-out.** Telegram's 30 messages a second, which the outbox paces to ("sends per
  second"). Sends answered 429 take places too, so 1,000 alerts with 5 % refused once make 1,050
  sends (a 35 s floor, 95 % of the allowance at best); the first alerts wait for the sweep that
  raises them. Bot CPU per delivered notification is the bot's CPU from the end of the sweep
  (every account checked) to the last alert, over the alerts delivered meanwhile; it includes
  what the idle bot spends over those ≈ 37 s (≈ 0.25 ms a notification at 25 a second). Claims
  are read as plain rows, outcomes written by plain statements as soon as known (those answered
  during a write go together in the next), the sendMessage built unvalidated from the stored row
  and its answer read for the message id only. On SQLite the sent mark is one UPDATE on a
  connection the outbox holds in autocommit for its life: its own transaction, one trip to
  aiosqlite's thread (≈ 0.2-0.3 ms of CPU; through a pooled SQLAlchemy transaction it took six
  trips, ≈ 1 ms). Writing the outcomes of 0.2 s together would save more, but a sent mark
  committed that much later is a duplicate after a crash
  (`test_pending_alerts_survive_sigkill_and_go_out_once` caught it), so it stays one commit per
  answer. On this virtual machine a wake-up of the event loop from an idle wait costs ≈ 0.2 ms
  of CPU by itself (a bare `asyncio.sleep`), and a message paced alone took at least three (its
  place under the pace, Telegram's answer, aiosqlite's): ≈ 3.2-3.8 ms a message. The pacer
  hands out places in groups, the moments a group's places apart
  (`bot.alerting.pacing.PLACES_AT_ONCE`), so the loop wakes once for a group: three to a moment
  took it to ≈ 2.3 ms (A/B on the same hour, twice: 2.28-2.30 against 3.22-3.58). Six (since
  2026-12-03, 13:03): 1.12-1.24 ms against 1.46-1.90 with three, five alternating pairs of the
  fan-out alone, the wall time the same (40.5 s), the backlog's pace too (1.016 s a chat message
  against 1.014). Six divides 30, as three does: a second from a group holds five groups,
  Telegram's 30, and the sixth comes a second and a ninth after the first, so a send may be as
  late as before until a second holds 31 (nine, tried too, put the fourth group a second after
  the first, 36 sends in a second: not kept). What remains: aiogram's
  call to the Bot API (0.8 ms when made back to back: aiohttp ≈ 45 %, aiogram's form encoding ≈
  30 %, the answer read ≈ 10 %) and its wake-ups, the log line of each notification sent (≈ 18
  µs, masked and written to a file, measured alone on 2026-12-02), the sent mark, and the idle
  bot's own work meanwhile (≈ 0.2-0.25 ms: 0.5 % of a core at 25 a second). aiogram alone, at
  the outbox's own pace and with nothing else to do, takes ≈ 1.2-1.4 ms a send on this machine
  (0.8-0.95 back to back; 2.9 with one place a moment). The looks for work and the sent marks of
  one trip each to aiosqlite's thread are what this round took out of the rest.
  **The floor.** With each answer marked sent as the outbox marks it ("each marked sent in SQLite"),
  aiogram alone takes 1.40 ms a send in the run of 2026-12-03 03:27 (1.30 at 03:15, 1.46-1.87 that
  morning; 0.98-1.82 in 21 runs on 2026-12-02), and the fan-out sends 1,050 times for 1,000 alerts
  delivered (5 % answered 429 are sent again):
  1.03-1.85 ms a delivered notification before the bot's claim, its log line and the idle bot's own
  work. The 1.5 ms target lies inside that range: aiogram's send and the one commit per answer that
  keeps alerts from doubling after a crash leave ≈ 0.4 ms a notification for the rest on the fastest
  hour, nothing on slower ones. The bot met it in seven runs of the day (1.23-1.47 ms: at 11:01,
  11:30, 12:28, 12:53, 13:53, 14:54, and 16:15, 1.30, 0.04 under that run's floor) and missed it
  in four after 12:00 (1.61-1.90, at 13:06, 13:14, 13:22 and 14:37); from 0.04 under to 0.41 above
  each run's floor in the nine runs after 12:00 (side by side with the code of 11:30, two runs
  each: 1.45-1.55 against 1.56-1.57, no change of its own). After 18:10, on a slower hour for
  aiogram's sends, it missed it in both runs: 2.15 at 18:49 (that run's floor 1.42) and 1.77 at
  19:14 (floor 1.82, so 0.05 under it). Side by side with the code before that session
  (fc33e5b), two pairs: 1.85-1.96 against 2.01-2.06 ms, so that miss was the hour's, not the
  code's. On 2026-12-03 it missed it again: 1.74 at 03:15 (floor 1.30) and 1.72 at 03:27
  (floor 1.40), 0.3-0.45 ms above the floor. That morning, with the looks for due accounts
  once a second (by the idle rows, the idle bot's own work through the fan-out's ≈ 40 s came
  from ≈ 0.28 to ≈ 0.07-0.12 ms a notification), on a slow hour for the floor too: 1.74, 1.75,
  2.11 and 2.01 at 06:58, 07:10, 07:25 and 07:39 (floors 1.53, 1.46, 1.87 and 1.51), 0.21-0.50
  above them. With places six to a moment (the floor's sends wait for places from the same
  pacer, so they go in groups too): 1.35 at 13:20 (floor 1.12) and 1.41 at 13:39 (floor 1.27),
  met on an hour slow for the sweeps, and 1.31-1.54 in the pairs above.
- **Backlog after a restart.** Alerts queued for 10 chats while the bot was down: nothing
  wakes the outbox, so each chat's messages go out at the outbox's own pace. Telegram allows
  a private chat 1 message a second; the worker sleeps until the first chat held by that gap
  is free (the pacer tells when), not a fixed 1 s poll, which made it 1.4-1.8 s. Places
  three to a moment (see the fan-out) add a few milliseconds: 1.010 before, 1.017 after. The
  chats sent at one moment were answered, so freed, milliseconds apart: with the look for work
  down to one trip to aiosqlite's thread, a pass took the first one freed alone, and the others
  missed its group of places by a pass (some runs showed gaps of 1.13 s, 2026-12-02). A group's
  places left now still go at once for 50 ms after its moment, the next group a span after the
  latest of them (`bot.alerting.pacing.JOIN`): 1.02-1.05 in every run since. (A 5 ms wake
  slack in the outbox did as much on an idle machine, and failed under load.)
- **Idle.** One index probe a second for due accounts (four before 2026-12-03), the outbox's
  look for due notifications (it sleeps until the next one, or the first chat held by its gap,
  is due, or a second), APScheduler's tick and aiogram's long poll (a bare aiogram bot polling
  takes 0.05 % of a core). Each look is one statement on a connection its loop holds for its life
  (`bot/storage/direct.py`), one trip to aiosqlite's thread. Through the pool a look took five
  or six trips, and on this machine a trip from idle costs ≈ 0.4 ms of CPU in wake-ups alone
  (a bare `asyncio.sleep` from idle ≈ 0.3 ms): 1.4-1.8 % of a core before (2026-12-02),
  0.33-0.6 % with four looks a second. Since 2026-12-03 the looks come once a second: 0.17-0.30 %
  in the full runs of that morning, against 0.70 in the one before; at 1,000 accounts, 0.10-0.30
  % against 0.40-0.50 (four pairs of 20 s). A dead replica's checks are taken over, and accounts
  set due from outside found, up to a second later (0.25 s before): every change the bot makes
  itself sets the next check an interval ahead, and a look that finds nothing due knows when
  the first will be, and looks again then.
- **PostgreSQL, one replica.** The same sweep, with the database work in the server and the
  guard's state in Redis (`bot/fleet/limits.py`): two Lua scripts per SMSC request
  (`bot/fleet/guard_scripts.py`), one that looks at the credentials, takes the login's turn and
  admits the request, one that counts it, stores the balance and hands the turn back (the turn
  is a lease, so no task keeps it alive). Scripts called together, or while a pipeline is on its
  way, go to Redis in one pipeline: measured apart against the same Redis, a script called
  alone costs the bot ≈ 120 µs of CPU, one of fifty sent together ≈ 30. Before (2026-12-02,
  each script a round trip of its own) the guard's state took ≈ 16 % of a py-spy profile of the
  sweep and ≈ 0.3 ms of CPU per login; after, ≈ 7 %, and the sweep's CPU went from 0.163-0.164
  to 0.133-0.141 ms an account (A/B, three sweeps each, then two more), its wall time from
  2.82-2.89 s to 2.57-2.71. PostgreSQL and Redis take about as much CPU again in their own
  processes. The wall time is the machine's: the bot, PostgreSQL, Redis and the fakes share two
  cores, where SQLite's sweep had the bot on one core and the fakes on the other. Not kept:
  hiredis (redis-py's parser in C), 0.129-0.143 against 0.133-0.141 with the pipelines, and
  0.161-0.172 against 0.167-0.176 without them: within the noise.
  **The floor.** The same sweep's I/O alone through asyncpg ("PostgreSQL, its I/O alone") costs
  0.037 ms of CPU an account in the run of 2026-12-03 03:27 (0.038-0.057 on 2026-12-02,
  0.045-0.047 on the morning of 2026-12-03), its wall time 1.39
  times the sweep's floor. Beyond the floor the bot spends what it does on SQLite (the guard,
  now ≈ 10 µs an account with its Redis scripts; the rules; the accounts' records and the
  writes' conversions), and SQLAlchemy's execution over asyncpg, which runs its synchronous core
  in greenlets (≈ 11 % of the samples). As on SQLite, no one part stands in the way of 0.10, and
  none is a physical limit. Since 17:00, UTC datetimes are converted for asyncpg by remembered
  functions, as they are for SQLite (an `astimezone` or a `replace` costs ≈ 1 µs, and a batch's
  times are mostly a few): 0.150-0.157 against 0.156-0.163 ms an account (two pairs of two
  sweeps, on a slow hour). Since 18:40 the writes go to the driver, and young collections come
  less often (see the sweep above): 0.099-0.106 against 0.110-0.125 in single sweeps, side by
  side; in the two full runs, 0.154 (18:49) and 0.148 (19:14), where two replicas took
  0.156 and 0.114 together. That is this machine's swing, not the sweep's place in the run:
  the benchmark's own function for these sweeps, run alone twice in a row (19:45), gave 0.101
  and then 0.142 ms an account for one replica, while the floor's I/O gave 0.030 and then
  0.041; the ratio to the floor held (3.4 and 3.5).
  **The servers' side** (pg_stat_statements, one sweep, 2026-12-03 14:40). PostgreSQL spent
  0.61 s on the 26 claims (≈ 23 ms each: a claim groups every due account by login to pick the
  50 most overdue, so a sweep of 10,000 due at once costs it in proportion to what is still
  due, each time), 0.40 s on the accounts' UPDATEs (40 µs a row), 0.30 s on the held accounts'
  reads with their row locks (19 of ≈ 500 rows, 16 ms each), 0.12 s on the samples' INSERTs,
  and 0.35 s on the benchmark's own statements: its counts while it waits for the sweep (every
  50 ms, each a scan of the accounts) and its UPDATE that sets every account due. Since 14:50
  those two are no longer counted as the servers' (0.035 ms an account less). The floor's
  statements cost the server 0.08-0.09 ms an account, the bot's 0.10-0.19 (0.147 and 0.102 in
  the runs of 15:01 and 15:09). With the bot's own CPU, 0.2-0.37 ms an account of CPU shares
  the machine's two cores with the fakes: 1.0-1.85 s at the least for 10,000 accounts, against
  the 1.5 s the wall time target allows; the rest of the wall time is the writes (below).
  **Claims since 2026-12-03 16:40** pick their logins among the first due accounts only, 20 for
  each login a claim may take, read from the next-check index (`DUE_READ_PER_CLAIMED` in
  `bot/storage/stats.py`); SQLite's claim walked that index already. A claim's keys, measured
  alone on a database with every account due: 8-10 ms before and ≈ 2 ms after at 10,000
  accounts, 88-101 ms and 1.5-2 ms at 100,000, where a sweep makes a claim for every 50
  logins. In sweeps of 10,000 accounts the gain is within this machine's noise (three pairs:
  the servers' CPU 0.139, 0.109, 0.101 before against 0.118, 0.099, 0.102 after). At 50,000
  accounts (5,000 logins, four pairs, 16:35-17:00), the servers' CPU 0.240, 0.204, 0.236 and
  0.234 ms an account before against 0.157, 0.191, 0.170 and 0.241 after, the wall time 13.4,
  10.7, 12.5 and 12.9 s against 9.7, 12.4, 10.3 and 14.3 (the last with the bot's CPU at 0.152
  ms an account against 0.119-0.126 in the others: a slow moment). At 100,000 accounts (10,000
  logins, two pairs, 17:05-17:18): the servers' CPU 0.484 and 0.400 ms an account before
  against 0.184 and 0.248 after, the wall time 52.0 and 42.9 s against 23.5 and 27.7 (the
  floor 10 s), the bot's CPU 0.152-0.158 against 0.117-0.118. A claim that finds fewer
  logins than it asked for among the accounts it looked at, having leased as many accounts as
  it looked at, says that more may be due, and the look claims on (a login watched by many
  chats has that many accounts).
  Writes are one at a time in a process (the checks' turn), so a sweep on PostgreSQL waits on
  them: two at a time, tried in eight pairs of single sweeps (15:10 and 15:30), took 0.93 of
  the wall time on average, better in five pairs and worse in three (1.93, 1.57, 1.68, 2.78,
  2.87, 2.60, 2.26 and 2.78 s against 2.31, 1.44, 1.89, 3.45, 2.81, 3.37, 2.54 and 2.30), as the
  machine's speed changed within the pairs (the bot's CPU 0.090-0.181 ms an account). Not
  kept: a gain within the noise, for writers of one process waiting on each other's row locks
  to reason about. In the fastest of those sweeps one replica met both targets (0.090 ms an
  account, 1.44 times the floor); the run at 15:09 had 0.103 and 1.66, the table's (18:00)
  0.115 and 1.77.
  **The write's chats read** (since 2026-12-03 22:20) binds the chats' ids as one array,
  unnested (`bot/alerting/outcomes.py`): an IN of a batch's 440-500 ids was SQL rendered for
  each batch and a statement for asyncpg to prepare. Measured alone, forty reads of 440-500
  chats each, three rounds: 2.0-3.9 ms of the bot's CPU a read against 4.0-5.7, the server's
  the same (0.75-1.25 ms). `= ANY(array)` was tried first: the bot's CPU as low, but its plan
  scanned every chat, 4.0-6.3 ms of the server's CPU a read. The read of the held accounts
  (500 rows of 33 columns, 7-12 ms of the bot's CPU) was profiled the same way: asyncpg's
  decoding of the rows 31 % of it, SQLAlchemy's rows 15-20 %, the records built from them
  23 %; read past SQLAlchemy, within the noise (8.3-9.6 against 8.5-12.7 ms), not kept.
- **PostgreSQL, two replicas.** Each replica claims due logins' accounts, 50 logins a statement
  and up to 500 in flight, with a conditional UPDATE of rows locked in one order
  (`bot/storage/stats.py`, `claim_due`), so they split the sweep login by login without a
  double; the guard in Redis keeps one request per login for the fleet. On two cores two
  replicas cannot be faster than one: their CPU adds up (both look for due work, both start),
  and the wall time is what the machine's two cores give the four processes and the fakes. With
  a core per replica the sweep's CPU would divide between them.
- **Growth.** CPU per account checked is flat: a check's cost is per login and per account
  written, not per account kept. Memory grows with the sweep's working set, not with the
  accounts at rest: up to 500 logins' checks in flight, their accounts read 50 logins to a
  transaction, SQLAlchemy's statement cache, and the fakes' answers; CPython keeps what it
  freed in its arenas, so idle RSS stays near the sweep's peak. Most of the RSS above the
  floor is fixed (the imports, ≈ 41 MB; see RSS above). Idle CPU does not grow with accounts:
  the looks for due work are indexed and find nothing.
- **Goals for several replicas** (reported, not asserted). Two replicas: no account checked
  twice and no error 9, met (the same holds in `tests/test_e2e_fleet.py`). PostgreSQL's bot CPU
  per account within 1.5x of SQLite's: met since the guard's state takes two scripts per SMSC
  request (it was 1.7-1.8x with seven round trips), sent together with other checks' scripts.
  At 100,000 accounts, idle CPU under 2 % of a core, and peak RSS above the floor under 100 MB:
  see the Growth rows.
- **The fakes** run in the benchmark's own process: beside one bot, on the second core; beside
  two replicas, PostgreSQL and Redis, on a machine of two cores, they compete with them.
- **Noise.** CPU per account varies by ± 15 % from run to run of the same code on this machine (more
  when other work runs beside), wall times more, and the machine itself speeds up and slows down: on
  2026-12-02 the same code answered bursts of 200 /balance at 270-280 a second (≈ 2.8 ms of CPU an
  update) and, 20 minutes later, at 190-210 (≈ 4 ms), the machine otherwise idle both times. Four
  full runs of `python -m bench` within 90 minutes, later that day, on code that changed only in
  ways that run the same statements: sweep 0.218, 0.275, 0.242 and 0.246 ms an account, /balance
  bursts 222, 155, 201 and 185 a second, 2.17-2.75 ms of CPU a notification (the table is the
  fourth). Two more at 05:46 and 06:17, after the chat reader: sweep 0.211 and 0.268 ms an account,
  bursts 423 and 251 a second (aiogram alone 884 and 619), 2.14 and 2.21 ms a notification. With the
  floors' rows, at 08:15 and 08:41 (the table then): sweep 0.249 and 0.241 ms an account (its I/O
  alone 0.102 and 0.082), bursts 293 and 292 a second (aiogram alone 643 and 971), 2.29 and 1.94 ms
  a notification (aiogram's sends each marked sent 1.55 and 1.24). At 10:26, on another machine of
  the same size (an AMD EPYC, the runs before on an Intel Xeon), with the same code: sweep 0.170
  (0.094), burst 366 (889), 1.61 ms a notification (1.48); at 11:01, after this round's conversions
  and guard windows: 0.146 (0.065), 435 (1144), 1.37 (1.06); at 11:30, with the floor on PostgreSQL
  too (the table then): 0.143 (0.076), 492 (1109), 1.33 (1.21). After 12:00, as this round's sweep
  changes landed one by one (sweep CPU and wall time, the I/O floor's in brackets; burst; fan-out):
  12:28 0.144 and 1.78x (0.049, 1.23x), 401, 1.41; 12:53 0.132 and 1.64x (0.051, 1.32x), 420, 1.47;
  13:06 0.200 and 2.19x (0.054, 1.27x), 310, 1.67; 13:14 0.165 and 1.86x (0.053, 1.26x), 336, 1.62;
  13:22, all of them, 0.123 and 1.31x (0.060, 1.31x), 443, 1.90; 13:53, the same code with the claim
  in a module of its own, 0.128 and 1.39x (0.051, 1.26x), 422, 1.44; 14:37 and 14:54, the same bot
  with the floor's process importing the stack, 0.130 and 1.47x (0.056, 1.29x), 434, 1.61, and 0.127
  and 1.41x (0.048, 1.25x), 463, 1.23; 16:15, with the fleet's Redis scripts pipelined, 0.128 and
  1.38x (0.063, 1.24x), 444, 1.30. After 18:10, on another machine of the same size, with young
  collections less often and the writes at the driver: 18:49 0.112 and 1.21x (0.047, 1.27x), 560
  (1123), 2.15 (1.42); 19:14 0.108 and 1.27x (0.057, 1.27x), 672 (926), 1.77 (1.82). On 2026-12-03,
  with the write path of that session: 03:15 0.116 and 1.28x (0.039, 1.21x), 460 (1433), 1.74
  (1.30); 03:27 0.098 and 1.18x (0.043, 1.23x), 648 (1616), 1.72 (1.40). That morning, with the
  looks once a second (see the sweep's notes): 06:58 0.113 and 1.23x (0.052, 1.21x), 542 (1316),
  1.74 (1.53); 07:10 0.124 and 1.30x (0.059, 1.33x), 516 (1669), 1.75 (1.46); 07:25 0.137 and 1.44x
  (0.052, 1.23x), 466 (874), 2.11 (1.87); 07:39 0.132 and 1.44x (0.060, 1.28x), 486 (1211), 2.01
  (1.51). With the histories' changes and the history sweep (its CPU an account last): 09:16 0.212
  and 3.06x (0.063, 1.31x), 281 (793), 2.49 (2.02), 1.019; 09:32 0.196 and 2.24x (0.052, 1.26x), 320
  (1208), 1.99 (1.74), 0.922; 09:43 (the table, a hundred histories a query) 0.113 and 1.26x (0.050,
  1.24x), 367 (1195), 1.93 (1.71), 0.851. Side by side at 09:35, five single sweeps each,
  alternating: 0.112-0.154 ms an account for the code of 07:39, 0.116-0.181 for that of 09:16. With
  aiogram's models built when first used: 11:09 0.153 and 1.61x (0.062, 1.34x), 278 (1216), 1.77
  (1.47), 0.630, idle RSS 139.0 MB (26.7 below the bare-import floor), the first burst still
  building the Update; 11:24 (the table) 0.123 and 1.33x (0.051, 1.27x), 631 (1618), 1.70 (1.25),
  0.735, 141.3 MB (24.2 below). The runs at 13:06 and 13:14 of 2026-12-02 fell on a slow half hour
  (the burst's CPU 3.0-3.2 ms an update against 2.2-2.45 on either side). With places six to a
  moment: 13:20 0.154 and 1.64x (0.063, 1.55x), 386 (946), 1.35 (1.12), 0.653, 138.9 MB (26.6
  below); 13:39 (the table) 0.152 and 1.64x (0.074, 1.34x), 435 (1094), 1.41 (1.27), 0.888, 138.5 MB
  (27.0 below): a slow hour for the sweeps, their floor's CPU 0.063-0.074 against 0.051 at 11:24.
  With the held accounts' statement built once and short histories' studies answered at once:
  15:01 0.125 and 1.32x (0.074, 1.43x), 479 (1085), 1.32 (1.20), 0.805, 141.8 MB (23.7 below),
  PostgreSQL 0.127 and 0.181 with one replica and two (its floor 0.057); 15:09, the held
  accounts found by their index again, 0.119 and 1.27x (0.061, 1.36x), 523 (1281), 0.91 (0.90),
  0.594, 137.9 MB (27.6 below), PostgreSQL 0.103 and 0.125 (0.037). With PostgreSQL's claims
  reading the first due accounts only: 16:56 0.176 and 2.26x (0.059, 1.30x), 331 (1093), 1.51
  (1.02), 0.831, 145.2 MB (20.3 below), PostgreSQL 0.157 and 0.156 (0.058), a slow run (its
  sweep three times its floor's CPU, the bot's part unchanged in single sweeps side by side:
  0.116 and 0.125 against 0.126 and 0.139 for the code before); 17:07 0.115 and
  1.27x (0.062, 1.36x), 461 (1046), 1.31 (1.10), 0.716, 135.4 MB (30.1 below), PostgreSQL 0.125
  and 0.112 (0.050), 2.00x and 1.70x. With writes held back for company (the sweep at 200 ms
  after the floor): 17:42 0.135 and 1.46x (0.065, 1.34x), 0.176, 474 (827), 1.43 (1.42), 0.953,
  138.1 MB (27.5 below), PostgreSQL 0.178 and 0.165 (0.058), 2.99x and 2.18x; 17:48 0.149 and
  1.62x (0.078, 1.53x: a slow hour, whose floor alone missed 1.5x), 0.147, 402 (902), 1.25
  (1.32), 0.919, 138.6 MB (26.9 below), PostgreSQL 0.109 and 0.126 (0.045), 1.73x and 1.87x;
  17:54 0.164 and 1.99x (0.068, 1.37x), 0.222 and 1.21x, 389 (877), 1.57 (1.12), 1.025, 144.7
  MB (20.8 below), PostgreSQL 0.173 and 0.169 (0.058), 2.89x and 2.17x: the slowest hour of
  the day, aiogram alone answering 877 updates a second against 1,281 at 15:09; 18:00 (the
  table) 0.117 and 1.25x (0.064, 1.37x), 0.161 and 1.08x, 554 (888), 1.29 (1.11), 0.792, 139.5
  MB (26.0 below), PostgreSQL 0.115 and 0.093 (0.041), 1.77x and 1.54x. On 2026-12-03 evening,
  with fewer trips to aiosqlite's thread, on a slower machine (its kernel build changed since
  18:00; aiogram alone 699-792 updates a second): 19:24 0.187 and 2.02x (0.105, 1.54x), 0.176
  and 1.12x, 262 (700), 1.59 (1.27), 0.976, 136.8 MB (28.7 below), PostgreSQL 0.179 and 0.220
  (0.077), 3.04x and 2.91x; 19:38 0.180 and 1.96x (0.104, 1.49x), 0.206 and
  1.09x, 347 (792), 1.47 (1.23), 0.877, 137.3 MB (28.1 below), PostgreSQL 0.186 and 0.205
  (0.073), 3.08x and 2.88x. On such an hour the sweep at 50 ms is bound by the bot's CPU
  (1.8 s of one core for a floor of 1 s), and its floor's own CPU (≈ 0.10 ms an account) leaves
  nothing of the 0.10 target for the bot's work. Then a faster hour (aiogram alone 1,091
  updates a second), with SQLite's side of the storage in a module of its own (no change to
  the paths measured): 20:08 (the table) 0.123 and 1.34x (0.056, 1.32x), 0.169 and 1.08x, 404
  (1091), 1.44 (0.77), 0.768, 137.5 MB (28.0 below), PostgreSQL 0.158 and 0.155 (0.057), 2.53x
  and 2.41x.
  Later that evening, with the checks' writes in a module of their own, PostgreSQL's chats read
  as one array and a claim left under way at shutdown keeping its connection (none of them a
  change to SQLite's sweep): 22:54 0.189 and 2.03x (0.090, 1.44x), 0.224 and 1.11x, 310 (560),
  1.47 (1.33), 0.823, 137.3 MB (28.3 below), PostgreSQL 0.229 and 0.233 (0.060), 3.87x and
  3.10x: a slow hour again, the floor's CPU 0.090 against 0.056 at 20:08, and the bot's 2.1
  times its floor's (2.2 at 20:08). Single sweeps side by side just before (22:48, four pairs,
  alternating): 0.200, 0.185, 0.137 and 0.119 ms an account for 162ab59 (as of 20:08) against 0.197,
  0.172, 0.146 and 0.121 for this one, the machine speeding up from pair to pair.
  Ratios of figures from the same run are the sturdier ones.

## Before this round (issue 16)

The same `python -m bench` on this machine at 17:20 UTC, before the sweep's writes went past the
ORM, the guard's Redis state became two scripts, the outbox slept until the next sendable chat,
its sent marks went to a held connection, /balance read the chat with its accounts at once and
stopped committing nothing, and Alembic stopped loading in the serving process (compare with
the table above; ± 15 % is noise here):

| Figure | Before |
|---|---:|
| Sweep, 10,000 accounts: wall time (floor 1.0 s) | 4.91 s |
| ... bot CPU per account checked | 0.319 ms |
| ... PostgreSQL and Redis, one replica: bot CPU per account | 0.530 ms (1.66x SQLite's) |
| ... SMSC in 200 ms: wall time (floor 4.0 s) | 5.56 s |
| /balance from 200 chats at once | 171 a second, p99 1.15 s (127-141 later, same code) |
| Alert fan-out: bot CPU per delivered notification | ≈ 5.5-6.4 ms (not in the table then) |
| Backlog after a restart: seconds per chat message | 1.4-1.8 (not in the table then) |
| Idle RSS, 10,000 accounts | 249.6 MB (83.6 MB above the floor) |

The fan-out's share of Telegram's 30 a second is the pacer's: it keeps 10 % headroom (27 a
second, issue 14) and 5 % of the sends are answered 429, so 25.7 alerts a second is the most it
can deliver (86 %). The 92.5 % of the 17:20 run was not reproduced by the same code since
(41.8 s for the fan-out, as now).

## Where the time goes

`python -m bench.profile` (py-spy at 250 samples a second, every thread of the bot) through the
same scenarios, before this round (commit d4ddd9c) and after it. A sample counts under the
library of its innermost Python frame: C code called from Python (SQLite's statements, the
sqlite3 module, Decimal, datetime parsing) counts under its caller. In a container py-spy takes
a thread that waits for the GIL for a running one: the aiosqlite worker's share includes its
waits for the event loop's thread, more so when that thread is busy (the burst).

| Sweep of 10,000 accounts | before | after |
|---|---:|---:|
| SQLAlchemy ORM | 27% | 0% |
| aiosqlite worker (SQLite itself) | 18% | 24% |
| the bot's own code | 18% | 31% |
| SQLAlchemy Core and engine | 15% | 12% |
| httpx / httpcore / aiohttp | 14% | 16% |
| asyncio event loop | 5% | 9% |
| other (stdlib, C) | 4% | 8% |
| samples (250 a second) | 739 | 472 |

| /balance from 200 chats at once | before | after |
|---|---:|---:|
| aiosqlite worker (SQLite itself) | 29% | 37% |
| asyncio event loop | 19% | 15% |
| SQLAlchemy ORM | 9% | 6% |
| SQLAlchemy Core and engine | 8% | 6% |
| other (stdlib, C) | 8% | 8% |
| aiogram | 8% | 7% |
| the bot's own code | 7% | 6% |
| httpx / httpcore / aiohttp | 4% | 6% |
| logging | 3% | 0% |
| pydantic | 3% | 8% |
| cryptography | 2% | 0% |
| samples (250 a second) | 374 | 268 |

| Alert fan-out to 1,000 chats (its sweep included) | before | after |
|---|---:|---:|
| SQLAlchemy Core and engine | 23% | 8% |
| pydantic | 11% | 11% |
| asyncio event loop | 11% | 15% |
| SQLAlchemy ORM | 11% | 5% |
| other (stdlib, C) | 10% | 13% |
| httpx / httpcore / aiohttp | 10% | 13% |
| the bot's own code | 9% | 13% |
| aiosqlite worker (SQLite itself) | 7% | 11% |
| aiogram | 7% | 9% |
| logging | 1% | 3% |
| samples (250 a second) | 1314 | 527 |

- **Sweep.** The ORM is gone from it (27 % of the samples before: the unit of work flushing each
  account's UPDATE, and loading instances). What is left is spread out: SQLite itself, the
  bot's own rules and forecast, SQLAlchemy Core's per-value type processing (UTC datetimes,
  Decimal as text) and statement execution, and the SMSC requests through httpx and aiohttp.
  None is more than a quarter: the next halving needs the monitor's rules and writes out of
  per-account Python (set-based SQL for the accounts whose state cannot change, raw driver
  calls), and SMSC requests cheaper than httpx's layers over aiohttp. The same sweep's I/O
  alone (`python -m bench.profile --only floor`, 2026-12-02): httpx / httpcore / aiohttp 64 %
  of the samples, aiosqlite worker 27 %, asyncio event loop 46 % (it runs the HTTP client's
  callbacks, so the shares overlap). py-spy counts a thread waiting for the GIL as running
  here, so compare CPU from /proc across the two (0.08-0.11 against 0.21-0.27 ms an account),
  not sample counts. After this round's conversions (one profile, 2026-12-02 11:00, 252
  samples): aiosqlite worker 24 %, httpx / httpcore / aiohttp 23 %, SQLAlchemy Core and engine
  16 %; innermost, the times' two conversions 10 % (formatting and parsing text, which
  SQLite's storage needs) and the plain records 5 %. After this round's sweep changes (one
  profile, 13:30, 238 samples, the sweep 1.39 s): aiosqlite worker 27 %, httpx / httpcore /
  aiohttp 21 %, SQLAlchemy Core and engine 11 %; innermost, the plain records 5.5 % and the
  times' two conversions 3.4 %. On 2026-12-03 at 16:10 (py-spy at 2,000 a second, one sweep,
  2,418 samples, grouped by the outermost part a stack passes through): aiosqlite's thread
  36 % (its statements, and its waits for the GIL), the checks' writes on the event loop 18 %
  (the monitor's rules and studies 53 % of those, the records and their changes 27 %, the
  executemany's values 15 %), the guard and the client 12 %, the rest of httpx and aiohttp 11
  %, the event loop 8 %, the claims 3 %, and SQLAlchemy's expansion of the IN lists' values ≈
  4 %. At 19:10, after the trips' change (one sweep each way, 2,000 a second, grouped the same
  way): aiosqlite's thread 32 % before and 31 % after, the checks' writes on the event loop 25
  and 26 %, the guard and the client 19 and 19 %, SQLAlchemy's own stacks 5 and 1 %, the
  thread's wake-ups of the event loop (`_write_to_self`) 6.4 and 3.8 %: the shares barely move,
  as what went was spread over all of them (see "Trips to aiosqlite's thread"). "What stands
  in the way of 0.10 ms" under "What limits each figure" splits the same sweep by part, in CPU
  and in instructions.
- **Burst.** Fewer samples than before for the same 200 updates: one query where there were two,
  no commit, no thread hop for a filter, no decrypt. What is left is libraries, evenly:
  aiogram's parsing, middlewares and sendMessage, pydantic, SQLAlchemy building the chat's and
  accounts' objects, aiosqlite's trips. The aiosqlite worker's share is its waits for the event
  loop's thread, not work: read from /proc, aiosqlite's threads spend 0.03-0.05 s of CPU in a
  burst, the event loop's thread ≈ 0.7 s. With the chat reader (2026-12-02, the same profile,
  one burst each, 40 minutes apart): 341 samples before, 179 after, the aiosqlite workers'
  share 46 % and 14 %; of the 179, aiogram's call to sendMessage ≈ a quarter, the chat's one
  statement and its objects ≈ an eighth, the rest aiogram's update parsing and router walk,
  the bot's middlewares and the wording of the answer.
- **Fan-out.** The ORM is gone from the outbox (claims read as rows, outcomes written by plain
  statements), and SQLAlchemy Core mostly too: the sent mark goes to the driver on a held
  connection. Places three to a moment took out a third of the samples since the last round (792
  to 527, the sweep that raises the alerts included). Six to a moment (2026-12-03) shows no
  change under py-spy: two profiles each, alternating, 432 and 516 samples against 426 and 468,
  1.43-1.59 ms a notification against 1.50-1.55. What grouping saves is the CPU's wake-ups from
  idle, and a sampler running beside the bot keeps the machine from idling; without one, three
  more pairs the same hour: 1.31-1.54 against 2.05-2.21. Per notification what is left is aiogram's
  call to the Bot API (pydantic dumping the request, aiohttp, the answer parsed), the event
  loop's wake-ups, and the one commit of its sent mark, made before the next send could repeat
  it.
"""
