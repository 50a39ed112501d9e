"""The table of figures, printed and written to BENCHMARKS.md with the machine it ran on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.proc import machine

HEADER = ("Scenario", "Measure", "Value", "Unit", "Target")


@dataclass(frozen=True)
class Row:
    scenario: str
    measure: str
    value: float
    unit: str
    target: str = ""
    decimals: int = 2

    def cells(self) -> tuple[str, ...]:
        return (
            self.scenario,
            self.measure,
            f"{self.value:.{self.decimals}f}",
            self.unit,
            self.target,
        )


def table(rows: list[Row]) -> str:
    """A Markdown table, columns padded so it also reads well in a terminal."""
    cells = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADER))]
    right = {2}  # numbers

    def line(values: tuple[str, ...]) -> str:
        padded = [
            v.rjust(w) if i in right else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if i in right else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    return "\n".join([line(HEADER), rule, *(line(c) for c in cells[1:])])


def machine_text() -> str:
    info = machine()
    return (
        f"{info['cores']} cores ({info['cpu']}), {info['memory']} memory, "
        f"{info['python']}, {info['os']}"
    )


def write(path: Path, rows: list[Row], *, command: str, duration: float, notes: str) -> None:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    path.write_text(
        "# Benchmarks\n\n"
        f"`{command}` on {when}, {duration:.0f} s in all.\n\n"
        f"Machine: {machine_text()}.\n\n"
        f"{table(rows)}\n\n"
        f"{notes.strip()}\n"
    )
