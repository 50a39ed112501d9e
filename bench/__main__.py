"""`python -m bench`: the real bot against loopback fakes of SMSC and Telegram; one table.

python -m bench                    # full run, a few minutes; writes BENCHMARKS.md
python -m bench --smoke            # tiny sizes, seconds; writes nothing unless --out
python -m bench --accounts 20000   # another size (chats = accounts/5, logins = /10)
python -m bench --postgres URL --redis URL   # these servers, not ones started for the run
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path

from bench import alone, fleet, scenarios
from bench.backlog import backlog_rows
from bench.config import Config
from bench.data import login_name, password
from bench.floor import floor_sweep
from bench.harness import BotRun
from bench.report import Row, table, write
from bench.rows import (
    CHECK_CONCURRENCY,
    Point,
    fan_out_rows,
    fleet_rows,
    floor_rows,
    growth_rows,
    idle_rows,
    sweep_rows,
)
from tests.fake_smsc import FakeSmsc

# What limits each figure, written under the table in BENCHMARKS.md.
NOTES = Path(__file__).with_name("notes.md")


STARTED = time.monotonic()


def progress(text: str) -> None:
    print(f"bench [{time.monotonic() - STARTED:5.1f} s]: {text}", file=sys.stderr, flush=True)


def settled_idle(bot: BotRun, config: Config) -> scenarios.Idle:
    progress(f"idle for {config.idle:g} s")
    time.sleep(min(config.idle, 2.0))  # last answers and their commits settle
    return scenarios.idle(bot, config.idle)


def scale_rows(config: Config, work: Path) -> tuple[list[Row], Point]:
    layout = config.scale
    progress(f"sweep of {layout.accounts} accounts")
    with BotRun(work / "scale", layout, latency=config.latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
        idle = settled_idle(bot, config)
    label = f"Sweep, {layout.accounts} accounts"
    return sweep_rows(label, layout, result, config.latency, targets=False), Point(result, idle)


def growth_point(config: Config, work: Path) -> Point:
    layout = config.growth
    progress(f"sweep of {layout.accounts} accounts")
    with BotRun(work / "growth", layout, latency=config.latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
        return Point(result, settled_idle(bot, config))


def fleet_sweeps(
    config: Config, work: Path, postgres: str | None, redis: str | None
) -> tuple[dict[int, scenarios.Sweep], dict[str, float]]:
    """The sweeps by replicas, and the same sweep's I/O alone on PostgreSQL."""
    layout = config.main
    progress(f"sweep of {layout.accounts} accounts on PostgreSQL and Redis, 1 and 2 replicas")
    with fleet.servers(postgres, redis) as (postgres_url, redis_url):
        sweeps = fleet.sweeps(
            work,
            layout,
            latency=config.latency,
            timeout=config.timeout,
            settle=config.settle,
            postgres=postgres_url,
            redis=redis_url,
        )
        progress(f"sweep of {layout.accounts} accounts on PostgreSQL, its I/O alone")
        with fleet.fresh(postgres_url, redis_url) as database:
            return sweeps, floor_sweep(layout, config.latency, database=database)


def history_rows(config: Config, work: Path) -> list[Row]:
    """The big sweep again, every account with a history to study (a sample an hour)."""
    layout = replace(config.main, history=config.history)
    progress(f"sweep of {layout.accounts} accounts, {config.history} hours of history each")
    with BotRun(work / "history", layout, latency=config.latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
    label = f"Sweep, {layout.accounts} accounts, each studying {config.history} hourly samples"
    # The targets are the plain sweep's; this is the worst hour's (see the notes).
    return sweep_rows(label, layout, result, config.latency, targets=False)


def slow_rows(config: Config, work: Path) -> list[Row]:
    """The big sweep again with SMSC answering as slowly as over the internet."""
    layout, latency = config.main, config.slow_latency
    progress(f"sweep of {layout.accounts} accounts, SMSC answering in {latency * 1000:.0f} ms")
    with BotRun(work / "slow", layout, latency=latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
    label = f"Sweep, {layout.accounts} accounts, SMSC in {latency * 1000:.0f} ms"
    return sweep_rows(label, layout, result, latency)


def main_rows(config: Config, work: Path) -> tuple[list[Row], list[Row], Point]:
    """The big sweep, then /balance and idle in the same bot; then the naive way. Rows of the
    sweep, and of the naive way and /balance, which go to different places; the sweep and
    idle."""
    layout, lat = config.main, config.latency
    progress(f"sweep of {layout.accounts} accounts")
    # The longest cache (300 s): /balance right after the sweep answers from memory, as it would
    # within BALANCE_CACHE_SECONDS of a check.
    with BotRun(work / "main", layout, latency=lat, BALANCE_CACHE_SECONDS="300") as bot:
        big = scenarios.sweep(bot, timeout=config.timeout)
        chats = layout.chat_ids
        progress(f"/balance from {config.burst} chats at once")
        burst = scenarios.burst(bot, chats[: config.burst], timeout=config.timeout)
        progress(f"/balance {config.steady_rate:g} a second")
        steady = scenarios.steady(
            bot,
            chats[config.burst :] or chats,
            rate=config.steady_rate,
            count=config.steady_count,
            timeout=config.timeout,
        )
        idle = settled_idle(bot, config)
    sweep = sweep_rows(f"Sweep, {layout.accounts} accounts", layout, big, lat)

    progress(f"the naive way: {layout.accounts} requests")
    with FakeSmsc() as smsc:
        smsc.latency = lat
        for login in range(layout.logins):
            smsc.add_account(login_name(login), password(login))
        naive = scenarios.naive(smsc, layout.logins, layout.accounts, CHECK_CONCURRENCY)
    label = f"Naive, {layout.accounts} accounts"
    rows = [
        Row(label, "SMSC requests (one per account)", naive.requests, "", "", 0),
        Row(label, "SMSC rate-limit errors (9)", naive.rate_limited, "", "", 0),
        Row(label, "wall time", naive.wall, "s"),
        Row(label, "SMSC requests, naive / bot", naive.requests / big.requests, "x"),
        Row(label, "wall time, naive / bot", naive.wall / big.wall, "x"),
    ]
    for label, result, target in (
        (f"/balance, {config.burst} chats at once", burst, ""),
        (f"/balance, {config.steady_rate:g} a second", steady, "< 50"),
    ):
        label += " (cached)"
        rows += [
            Row(label, "updates handled per second", result.per_second, "/s", "", 1),
            Row(label, "answered with balances", result.answered, "", str(result.updates), 0),
            Row(label, "latency p50", result.p50 * 1000, "ms", "", 1),
            Row(label, "latency p95", result.p95 * 1000, "ms", "", 1),
            Row(label, "latency p99", result.p99 * 1000, "ms", target, 1),
        ]
        if result is burst:
            rows.append(Row(label, "bot CPU per update", burst.cpu / burst.updates * 1000, "ms"))
    return sweep, rows, Point(big, idle)


def alone_rows(config: Config) -> tuple[list[Row], list[Row]]:
    """aiogram alone (bench.alone): rows of the same burst, and of sends at the outbox's pace."""
    progress(f"aiogram alone: /balance from {config.burst} chats, {config.alone_sends} sends")
    with alone.Alone() as bare:
        burst = scenarios.burst(bare, config.main.chat_ids[: config.burst], timeout=config.timeout)
    label = f"/balance, {config.burst} chats at once, aiogram alone (no database)"
    sends = "Alerts at the outbox's pace, aiogram alone"
    measure = f"CPU per send, {config.alone_sends} sends"
    bare = alone.sends_cpu(config.alone_sends)
    marked = alone.sends_cpu(config.alone_sends, marked=True)
    return [
        Row(label, "updates handled per second", burst.per_second, "/s", "", 1),
        Row(label, "latency p99", burst.p99 * 1000, "ms", "", 1),
        Row(label, "CPU per update", burst.cpu / burst.updates * 1000, "ms"),
    ], [
        Row(f"{sends} (no database)", measure, bare * 1000, "ms", "", 3),
        Row(f"{sends}, each marked sent in SQLite", measure, marked * 1000, "ms", "", 3),
    ]


def sqlite_floor(config: Config) -> dict[str, float]:
    progress(f"sweep of {config.main.accounts} accounts, its I/O alone")
    return floor_sweep(config.main, config.latency)


def fan_out_run(config: Config, work: Path) -> list[Row]:
    layout = config.fan_out
    progress(f"alert fan-out to {layout.chats} chats")
    with BotRun(work / "fan-out", layout, latency=config.latency, low=True) as bot:
        fan = scenarios.fan_out(bot, throttled_share=config.throttled_share, settle=config.settle)
    return fan_out_rows(layout, fan, config.throttled_share)


def restart_rows(config: Config, work: Path) -> list[Row]:
    progress(f"a backlog for {config.backlog_chats} chats after a restart")
    return backlog_rows(
        work,
        chats=config.backlog_chats,
        per_chat=config.backlog_per_chat,
        timeout=config.timeout,
    )


def run(
    config: Config,
    *,
    side_by_side: bool = False,
    postgres: str | None = None,
    redis: str | None = None,
) -> list[Row]:
    """Every scenario, one bot at a time (or, for --smoke, side by side: the figures then
    disturb each other, but every one is still produced)."""
    with tempfile.TemporaryDirectory(prefix="smsc-bench-") as tmp:
        work = Path(tmp)
        groups = (
            partial(scale_rows, config, work),
            partial(main_rows, config, work),
            partial(fleet_sweeps, config, work, postgres, redis),
            partial(slow_rows, config, work),
            partial(history_rows, config, work),
            partial(fan_out_run, config, work),
            partial(restart_rows, config, work),
            partial(growth_point, config, work),
            partial(alone_rows, config),
            partial(sqlite_floor, config),
        )
        if not side_by_side:
            parts = [group() for group in groups]
        else:
            with ThreadPoolExecutor(len(groups)) as pool:
                futures = [pool.submit(group) for group in groups]
                parts = [future.result() for future in futures]
    (
        (scale, small),
        (sweep, commands, big),
        (replicas, postgres_floor),
        slow,
        history,
        fan_out,
        restart,
        biggest,
        (bare_burst, bare_sends),
        sqlite_floor_result,
    ) = parts
    floor = scenarios.aiogram_floor()
    # Order of the table: sweeps (small, big, its I/O alone, big on PostgreSQL and its I/O
    # alone there, slow SMSC, with history), naive, /balance and aiogram's alone, fan-out and
    # aiogram's sends alone, backlog after a restart, idle, growth.
    return [
        *scale,
        *sweep,
        *floor_rows(config.main, config.latency, sqlite_floor_result, aiogram_floor=floor),
        *fleet_rows(config.main, replicas, big.sweep, config.latency),
        *floor_rows(config.main, config.latency, postgres_floor, postgres=True),
        *slow,
        *history,
        *commands,
        *bare_burst,
        *fan_out,
        *bare_sends,
        *restart,
        *idle_rows(big, config.idle, floor),
        *growth_rows([small, big, biggest], floor),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the bench runs")
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts in the big sweep")
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server to use (SQLAlchemy)")
    parser.add_argument("--redis", help="URL of a Redis server to use (emptied by each run)")
    parser.add_argument(
        "--out", type=Path, help="write the table here (default: BENCHMARKS.md, none for --smoke)"
    )
    args = parser.parse_args(argv)
    config = Config.smoke() if args.smoke else Config.sized(args.accounts)
    out = args.out if args.out or args.smoke else Path("BENCHMARKS.md")
    start = time.monotonic()
    rows = run(config, side_by_side=args.smoke, postgres=args.postgres, redis=args.redis)
    print(table(rows))
    if out is not None:
        command = "python -m bench" + (" --smoke" if args.smoke else "")
        if not args.smoke and args.accounts != 10_000:
            command += f" --accounts {args.accounts}"
        write(
            out, rows, command=command, duration=time.monotonic() - start, notes=NOTES.read_text()
        )
        progress(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
