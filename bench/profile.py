"""`python -m bench.profile`: where the bot's CPU goes in a sweep, a /balance burst and an alert
fan-out, sampled by py-spy (the `dev` extra) from outside the bot process, all threads.

python -m bench.profile                          # 10,000 accounts; prints the tables
python -m bench.profile --only sweep --keep DIR  # one of them; the samples kept in DIR
python -m bench.profile --only floor             # the sweep's I/O alone (bench/floor.py)

A sample is the stack of a thread then on a CPU (py-spy leaves idle ones out, and this
leaves out those it takes for running while they wait: see WAITS). It is counted
once under every group its stack passes through (so a table's shares may add up to more than
100%), and once under its innermost frame. SQLAlchemy's async layer runs the ORM in greenlets,
whose stacks py-spy shows without the bot's frames that called them.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import aiosqlite.core

from bench import scenarios
from bench.data import Layout
from bench.floor import floor_sweep
from bench.harness import BotRun

# What a frame belongs to, by the file it runs in: first match wins.
GROUPS = (
    ("SQLAlchemy ORM", "sqlalchemy/orm/"),
    ("SQLAlchemy Core and engine", "sqlalchemy/"),
    ("aiosqlite worker (SQLite itself)", "aiosqlite/core.py"),
    ("asyncpg", "asyncpg/"),
    ("httpx / httpcore / aiohttp", ("httpx/", "httpcore/", "aiohttp/")),
    ("aiogram", "aiogram/"),
    ("pydantic", "pydantic"),
    ("redis client", "redis/"),
    ("cryptography", "cryptography/"),
    ("logging", "logging/"),
    ("the bot's own code", " (bot/"),
    ("asyncio event loop", "asyncio/"),
)
TOP = 12


@contextmanager
def sampled(pid: int, out: Path, *, rate: int = 250) -> Iterator[None]:
    """py-spy records `pid` while the block runs, into `out` (collapsed stacks)."""
    spy = shutil.which("py-spy")
    if spy is None:
        raise SystemExit("py-spy is not installed: pip install '.[dev]'")
    command = [spy, "record", "--pid", str(pid), "--rate", str(rate), "--threads"]
    process = subprocess.Popen(
        [*command, "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
        _, errors = process.communicate(timeout=60)
        if not out.exists():
            raise SystemExit(f"py-spy wrote nothing: {errors.decode()[-500:]}")


def _queue_waits() -> tuple[str, ...]:
    """Where aiosqlite's worker threads wait for the next statement, as py-spy names it."""
    source = inspect.getsourcelines(aiosqlite.core._connection_worker_thread)
    lines, first = source
    return tuple(
        f"_connection_worker_thread (aiosqlite/core.py:{first + n})"
        for n, line in enumerate(lines)
        if "tx.get()" in line
    )


# Threads py-spy counts as running in a container although they wait: the event loop in its
# poll, thread pools and aiosqlite's workers on their queues.
WAITS = ("select (selectors.py:", "_worker (concurrent/futures/thread.py:", *_queue_waits())


def waiting(leaf: str) -> bool:
    return any(wait in leaf for wait in WAITS)


def summary(raw: Path) -> str:
    """Tables of the samples in py-spy's collapsed stacks: by group, and by innermost function."""
    groups: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    bot_frames: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")[1:]  # the first is the thread
        if not frames or waiting(frames[-1]):
            continue
        n = int(count)
        total += n
        seen = {group for frame in frames for group in [group_of(frame)] if group}
        for group in seen:
            groups[group] += n
        leaves[frames[-1]] += n
        for frame in {short(f) for f in frames if " (bot/" in f and "__main__" not in f}:
            bot_frames[frame] += n
    lines = [f"{total} samples on a CPU", "", "| Where | Share of samples |", "|---|---:|"]
    lines += [f"| {name} | {n / total:.0%} |" for name, n in groups.most_common()]
    lines += ["", "| Innermost function | Share |", "|---|---:|"]
    lines += [f"| `{short(f)}` | {n / total:.1%} |" for f, n in leaves.most_common(TOP)]
    lines += ["", "| The bot's functions, with what they call | Share |", "|---|---:|"]
    lines += [f"| `{f}` | {n / total:.0%} |" for f, n in bot_frames.most_common(TOP)]
    return "\n".join(lines)


def group_of(frame: str) -> str | None:
    for name, marks in GROUPS:
        if any(mark in frame for mark in ((marks,) if isinstance(marks, str) else marks)):
            return name
    return None


def short(frame: str) -> str:
    """`name (path/to/module.py:12)` as `name (module.py)`."""
    name, _, where = frame.partition(" (")
    return f"{name} ({Path(where.split(':')[0]).name})"


def profile(
    work: Path,
    name: str,
    layout: Layout,
    act: Callable[[BotRun], object],
    *,
    before: Callable[[BotRun], object] = lambda bot: None,
    low: bool = False,
) -> str:
    raw = work / f"{name}.txt"
    settings = {"BALANCE_CACHE_SECONDS": "300"}
    with BotRun(work / name, layout, latency=0.05, low=low, **settings) as bot:
        before(bot)
        with sampled(bot.bots[0].process.pid, raw):
            result = act(bot)
    return f"### {name}\n\n{result}\n\n{summary(raw)}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--only", choices=("sweep", "floor", "burst", "fan-out"))
    parser.add_argument("--keep", type=Path, help="a folder to keep the runs and samples in")
    args = parser.parse_args(argv)
    layout = Layout(args.accounts, args.accounts // 5, args.accounts // 10)

    def sweep(bot: BotRun) -> object:
        return scenarios.sweep(bot, timeout=300)

    def burst(bot: BotRun) -> object:
        return scenarios.burst(bot, layout.chat_ids[:200], timeout=300)

    def fan_out(bot: BotRun) -> object:
        return scenarios.fan_out(bot, throttled_share=0.05, settle=1.0)

    def floor(work: Path) -> str:
        raw = work / "floor.txt"
        result = floor_sweep(layout, 0.05, watch=partial(sampled, out=raw))
        return f"### floor: the sweep's I/O alone\n\n{result}\n\n{summary(raw)}\n"

    runs = {
        "sweep": partial(profile, name="sweep", layout=layout, act=sweep),
        "floor": floor,
        # After a sweep, as in `python -m bench`: answered from the balances it cached.
        "burst": partial(profile, name="burst", layout=layout, act=burst, before=sweep),
        "fan-out": partial(
            profile, name="fan-out", layout=Layout(1000, 1000, 100), act=fan_out, low=True
        ),
    }
    with tempfile.TemporaryDirectory(prefix="smsc-profile-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name, run in runs.items():
            if args.only in (None, name):
                print(run(work), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
