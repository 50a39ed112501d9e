"""`python -m bench --smoke`: the benchmark runs end to end and prints its table.

Benchmarks carry no timed assertions: this checks that every figure is there and a number.
"""

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


def test_smoke_run_prints_a_table_of_numbers(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = table_rows(done.stdout)
    scenarios = {row[0].split(",")[0] for row in rows}
    assert scenarios == {"Sweep", "Naive", "/balance", "Alert fan-out", "Idle"}
    for scenario, measure, value, *_ in rows:
        assert float(value) >= 0, f"{scenario}: {measure} = {value!r}"
    by_measure = {(row[0], row[1]): float(row[2]) for row in rows}
    fan_out = next(s for s, _ in by_measure if s.startswith("Alert fan-out"))
    assert by_measure[fan_out, "lost"] == 0 and by_measure[fan_out, "duplicated"] == 0

    written = out.read_text()
    assert "Machine:" in written and "cores" in written and "Python" in written
    assert table_rows(written[written.index("| Scenario") :]) == rows
