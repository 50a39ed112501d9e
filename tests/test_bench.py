"""`python -m bench --smoke`: the benchmark runs end to end and prints its table.

Benchmarks carry no timed assertions: this checks that every figure is there and a number, and
that two replicas sharing a sweep doubled nothing. It lends the bench this session's PostgreSQL
and Redis rather than have it start its own.
"""

import math
import subprocess
import sys
from pathlib import Path

from bench.report import HEADER

ROOT = Path(__file__).resolve().parent.parent


def table_rows(text: str) -> list[list[str]]:
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    assert rows and tuple(rows[0]) == HEADER, text
    assert set(rows[1][0]) <= {"-", ":"}, "the header rule"
    return rows[2:]


def test_smoke_run_prints_a_table_of_numbers(tmp_path, postgres_server, redis_server):
    out = tmp_path / "BENCHMARKS.md"
    servers = ["--postgres", postgres_server, "--redis", redis_server]
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out), *servers],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,  # eight bot processes side by side; slow on a busy machine
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = table_rows(done.stdout)
    scenarios = {row[0].split(",")[0] for row in rows}
    assert scenarios == {
        "Sweep",
        "Naive",
        "/balance",
        "Alert fan-out",
        "Alerts at the outbox's pace",  # aiogram alone: what the bot's figures compare with
        "Backlog after a restart",
        "Idle",
        "Growth",
    }
    for scenario, measure, value, *_ in rows:
        # Memory grown from the smallest size may come out below zero at the smoke's sizes, and
        # memory above a bare aiogram's below it: the bot builds aiogram's models as used.
        below_zero = measure.startswith("... grown") or "above the floor" in measure
        least = -math.inf if below_zero else 0
        assert math.isfinite(float(value)) and float(value) >= least, f"{scenario}: {measure}"
    by_measure = {(row[0], row[1]): float(row[2]) for row in rows}
    # The floors the bot's figures are read against: the sweep's I/O alone on either database
    # (bench/floor.py), aiogram's sends each marked sent (bench/alone.py).
    floors = {s.partition(", ")[2].partition(", ")[2] for s, m in by_measure if "CPU per" in m}
    assert {
        "its I/O alone (httpx, aiosqlite; no bot)",
        "PostgreSQL, its I/O alone (httpx, asyncpg; no bot)",
        "each marked sent in SQLite",
    } <= floors
    # What any bot on the stack holds (the I/O alone, in a process importing the stack and none
    # of the bot) is less than the bot holds: the bot is that stack and its own code and state.
    stack, bot = (
        next(v for (_, m), v in by_measure.items() if m == measure)
        for measure in (
            "peak RSS above the floor, the stack imported",
            "bot peak RSS above the floor, all run",
        )
    )
    assert stack < bot
    fan_out = next(s for s, _ in by_measure if s.startswith("Alert fan-out"))
    assert by_measure[fan_out, "lost"] == 0 and by_measure[fan_out, "duplicated"] == 0
    replicas = [s for s, m in by_measure if m == "accounts checked more than once"]
    assert [s.split(", ")[-1] for s in replicas] == ["1 replica", "2 replicas"]
    for scenario in replicas:
        assert by_measure[scenario, "accounts checked more than once"] == 0
        assert by_measure[scenario, "SMSC rate-limit errors (9)"] == 0
    sizes = [s for s, m in by_measure if s.startswith("Growth") and m.startswith("bot CPU, idle")]
    assert len(sizes) == 3

    written = out.read_text()
    assert "Machine:" in written and "cores" in written and "Python" in written
    table = written[written.index("| Scenario") :].split("\n\n")[0]  # the notes have tables too
    assert table_rows(table) == rows


def loaded_by(code: str) -> set[str]:
    """The modules outside the standard library (and this repository's bench) that a fresh
    interpreter has loaded once it has run `code`."""
    code += "\nimport sys; print(' '.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, check=True, text=True
    )
    own = set(sys.stdlib_module_names) | {"bench", "__main__"}
    return {m for m in done.stdout.split() if m.partition(".")[0].lstrip("_") not in own}


def test_the_floor_loads_the_bots_stack_and_none_of_the_bot():
    # Its memory is read as what any bot on the stack must hold: it loads nothing the bot does
    # not load at start (its engine made), and nothing of the bot.
    floor = loaded_by("from bench.floor_io import STACK\nfor module in STACK: __import__(module)")
    bot = loaded_by(
        "from bot.telegram.lazy_models import import_aiogram\nimport_aiogram()\n"
        "import bot.runner\nfrom bot.storage.engine import create_engine\n"
        "create_engine('sqlite+aiosqlite:///bot.db')"
    )
    # Of the bot, only how it imports aiogram (its models built when first used).
    how = {"bot", "bot.telegram", "bot.telegram.lazy_models"}
    assert not any(m.partition(".")[0] == "bot" for m in floor - how)
    assert floor <= bot, floor - bot
