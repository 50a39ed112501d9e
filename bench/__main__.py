"""`python -m bench`: the real bot against loopback fakes of SMSC and Telegram; one table.

python -m bench                    # full run, a few minutes; writes BENCHMARKS.md
python -m bench --smoke            # tiny sizes, seconds; writes nothing unless --out
python -m bench --accounts 20000   # another size (chats = accounts/5, logins = /10)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import scenarios
from bench.data import Layout, login_name, password
from bench.harness import BotRun
from bench.notes import NOTES
from bench.report import Row, table, write
from tests.fake_smsc import FakeSmsc

CHECK_CONCURRENCY = (
    50  # bot.alerting.scheduling.Checks' default: the floor of a sweep depends on it
)


@dataclass(frozen=True)
class Config:
    main: Layout  # the big sweep, then commands and idle, in one bot
    scale: Layout  # a tenth of it, to show how cost grows
    fan_out: Layout  # one account per chat, each found low in the same sweep
    latency: float = 0.05  # SMSC's answer time
    slow_latency: float = 0.2  # ... and as it may be from a server far from SMSC
    burst: int = 200  # chats sending /balance at once
    steady_rate: float = 20.0  # /balance a second afterwards
    steady_count: int = 200
    idle: float = 30.0
    throttled_share: float = 0.05  # sends answered 429 once
    settle: float = 3.0  # wait for duplicates after the last alert
    timeout: float = 300.0

    @classmethod
    def sized(cls, accounts: int) -> Config:
        return cls(
            main=Layout(accounts, accounts // 5, accounts // 10),
            scale=Layout(accounts // 10, accounts // 50, accounts // 100),
            fan_out=Layout(1000, 1000, 100),
        )

    @classmethod
    def smoke(cls) -> Config:
        return cls(
            main=Layout(100, 20, 10),
            scale=Layout(50, 10, 5),
            fan_out=Layout(20, 20, 2),
            burst=10,
            steady_rate=10.0,
            steady_count=10,
            idle=1.0,
            settle=0.5,
            timeout=20.0,
        )


STARTED = time.monotonic()


def progress(text: str) -> None:
    print(f"bench [{time.monotonic() - STARTED:5.1f} s]: {text}", file=sys.stderr, flush=True)


def sweep_rows(label: str, layout: Layout, result: scenarios.Sweep, latency: float) -> list[Row]:
    floor = layout.logins * latency / CHECK_CONCURRENCY
    return [
        Row(label, "wall time, every account checked once", result.wall, "s"),
        Row(label, "floor: logins x SMSC latency / concurrency", floor, "s"),
        Row(label, "SMSC requests", result.requests, "", f"= {layout.logins} logins", 0),
        Row(label, "SMSC rate-limit errors (9)", result.rate_limited, "", "0", 0),
        Row(label, "SMSC requests in flight, mean", result.requests * latency / result.wall, ""),
        Row(label, "bot CPU", result.cpu, "s"),
        Row(label, "bot CPU per account checked", result.cpu_per_check * 1000, "ms", "< 1", 3),
        Row(label, "bot peak RSS", result.peak_rss / scenarios.MB, "MB", "< 200", 1),
    ]


def scale_rows(config: Config, work: Path) -> list[Row]:
    layout = config.scale
    progress(f"sweep of {layout.accounts} accounts")
    with BotRun(work / "scale", layout, latency=config.latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
    return sweep_rows(f"Sweep, {layout.accounts} accounts", layout, result, config.latency)


def slow_rows(config: Config, work: Path) -> list[Row]:
    """The big sweep again with SMSC answering as slowly as over the internet."""
    layout, latency = config.main, config.slow_latency
    progress(f"sweep of {layout.accounts} accounts, SMSC answering in {latency * 1000:.0f} ms")
    with BotRun(work / "slow", layout, latency=latency) as bot:
        result = scenarios.sweep(bot, timeout=config.timeout)
    label = f"Sweep, {layout.accounts} accounts, SMSC in {latency * 1000:.0f} ms"
    return sweep_rows(label, layout, result, latency)


def main_rows(config: Config, work: Path) -> tuple[list[Row], list[Row], list[Row]]:
    """The big sweep, then /balance and idle in the same bot; then the naive way. Rows of the
    sweep, of the naive way and /balance, and of idle, which go to different places."""
    layout, lat = config.main, config.latency
    progress(f"sweep of {layout.accounts} accounts")
    # A long cache: /balance right after the sweep answers from memory, as it would
    # within BALANCE_CACHE_SECONDS of a check.
    with BotRun(work / "main", layout, latency=lat, BALANCE_CACHE_SECONDS="3600") as bot:
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
        progress(f"idle for {config.idle:g} s")
        time.sleep(min(config.idle, 2.0))  # last answers and their commits settle
        idle = scenarios.idle(bot, config.idle)
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
    label = f"Idle, {layout.accounts} accounts, {config.idle:g} s"
    floor = scenarios.aiogram_floor() / scenarios.MB
    idle_rows = [
        Row(label, "bot CPU", idle.cpu_share * 100, "% of a core", "", 2),
        Row(label, "bot RSS", idle.rss / scenarios.MB, "MB", "< 200", 1),
        Row(label, "floor: a bare `import aiogram`", floor, "MB", "", 1),
    ]
    return sweep, rows, idle_rows


def fan_out_rows(config: Config, work: Path) -> list[Row]:
    layout = config.fan_out
    progress(f"alert fan-out to {layout.chats} chats")
    with BotRun(work / "fan-out", layout, latency=config.latency, low=True) as bot:
        fan = scenarios.fan_out(bot, throttled_share=config.throttled_share, settle=config.settle)
    per_second = scenarios.TELEGRAM_PER_SECOND
    label = f"Alert fan-out, {layout.chats} chats, {round(config.throttled_share * 100)}% sends 429"
    return [
        Row(label, "time until every alert delivered", fan.wall, "s"),
        Row(label, f"floor: {layout.chats} / {per_second} a second", fan.floor, "s"),
        Row(label, "sends per second, those answered 429 included", fan.sends_per_second, "/s"),
        Row(label, "alerts delivered per second", fan.per_second, "/s"),
        Row(label, "share of Telegram's 30/s", fan.per_second / per_second * 100, "%", ">= 90", 1),
        Row(label, "delivered", fan.delivered, "", str(layout.chats), 0),
        Row(label, "lost", fan.lost, "", "0", 0),
        Row(label, "duplicated", fan.duplicated, "", "0", 0),
        Row(label, "sends answered 429", fan.throttled, "", "", 0),
    ]


def run(config: Config, *, side_by_side: bool = False) -> list[Row]:
    """Every scenario, one bot at a time (or, for --smoke, side by side: the figures then
    disturb each other, but every one is still produced)."""
    groups = (scale_rows, main_rows, slow_rows, fan_out_rows)
    with tempfile.TemporaryDirectory(prefix="smsc-bench-") as tmp:
        if not side_by_side:
            parts = [group(config, Path(tmp)) for group in groups]
        else:
            with ThreadPoolExecutor(len(groups)) as pool:
                futures = [pool.submit(group, config, Path(tmp)) for group in groups]
                parts = [future.result() for future in futures]
    scale, (sweep, commands, idle), slow, fan_out = parts
    # Order of the table: sweeps (small, big, slow SMSC), naive, /balance, fan-out, idle.
    return [*scale, *sweep, *slow, *commands, *fan_out, *idle]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the bench runs")
    parser.add_argument("--accounts", type=int, default=10_000, help="accounts in the big sweep")
    parser.add_argument(
        "--out", type=Path, help="write the table here (default: BENCHMARKS.md, none for --smoke)"
    )
    args = parser.parse_args(argv)
    config = Config.smoke() if args.smoke else Config.sized(args.accounts)
    out = args.out if args.out or args.smoke else Path("BENCHMARKS.md")
    start = time.monotonic()
    rows = run(config, side_by_side=args.smoke)
    print(table(rows))
    if out is not None:
        command = "python -m bench" + (" --smoke" if args.smoke else "")
        if not args.smoke and args.accounts != 10_000:
            command += f" --accounts {args.accounts}"
        write(out, rows, command=command, duration=time.monotonic() - start, notes=NOTES)
        progress(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
