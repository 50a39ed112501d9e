"""Rows of the table from what the scenarios measured: sweeps, the fleet's beside SQLite's, their
I/O alone, how the cost grows with the number of accounts, idle, and the alerts' fan-out."""

from __future__ import annotations

from dataclasses import dataclass

from bench.data import Layout
from bench.report import Row
from bench.scenarios import MB, TELEGRAM_PER_SECOND, FanOut, Idle, Sweep, aiogram_floor

CHECK_CONCURRENCY = (
    50  # bot.alerting.scheduling.Checks' default: the floor of a sweep depends on it
)


# Issue 16's targets, for the 10,000-account sweeps: wall time over the floor, by SMSC's
# latency, and CPU per account.
WALL_TARGETS = {0.05: "<= 1.5", 0.2: "<= 1.2"}
CPU_TARGET = "<= 0.10"


def sweep_rows(
    label: str, layout: Layout, result: Sweep, latency: float, *, targets: bool = True
) -> list[Row]:
    """`targets`: the issue's, which apply to the 10,000-account sweeps."""
    floor = layout.logins * latency / CHECK_CONCURRENCY
    wall_target = WALL_TARGETS.get(latency, "") if targets else ""
    return [
        Row(label, "wall time, every account checked once", result.wall, "s"),
        Row(label, "floor: logins x SMSC latency / concurrency", floor, "s"),
        Row(label, "wall time / floor", result.wall / floor, "x", wall_target),
        Row(label, "SMSC requests", result.requests, "", f"= {layout.logins} logins", 0),
        Row(label, "SMSC rate-limit errors (9)", result.rate_limited, "", "0", 0),
        Row(label, "SMSC requests in flight, mean", result.requests * latency / result.wall, ""),
        Row(label, "bot CPU", result.cpu, "s"),
        Row(
            label,
            "bot CPU per account checked",
            result.cpu_per_check * 1000,
            "ms",
            CPU_TARGET if targets else "",
            3,
        ),
        Row(label, "bot peak RSS", result.peak_rss / MB, "MB", "< 200", 1),
    ]


def fleet_rows(layout: Layout, fleet: dict[int, Sweep], sqlite: Sweep, latency: float) -> list[Row]:
    """The sweep by replicas on PostgreSQL and Redis, each compared with one bot on SQLite."""
    rows = []
    for replicas, result in fleet.items():
        plural = "s" if replicas > 1 else ""
        label = f"Sweep, {layout.accounts} accounts, PostgreSQL, {replicas} replica{plural}"
        rows += sweep_rows(label, layout, result, latency)
        assert result.doubled is not None and result.servers_cpu is not None
        per_account = result.servers_cpu / result.accounts * 1000
        rows += [
            Row(label, "accounts checked more than once", result.doubled, "", "0", 0),
            Row(label, "PostgreSQL + Redis CPU per account checked", per_account, "ms", "", 3),
            Row(
                label,
                "bot CPU per account, PostgreSQL / SQLite",
                result.cpu_per_check / sqlite.cpu_per_check,
                "x",
                "<= 1.5",
            ),
        ]
    return rows


def floor_rows(
    layout: Layout,
    latency: float,
    result: dict[str, float],
    *,
    postgres: bool = False,
    aiogram_floor: int | None = None,
) -> list[Row]:
    """The big sweep's I/O alone (bench.floor): what the stack costs with none of the bot; its
    memory too, given the bare aiogram's (`aiogram_floor`, bytes)."""
    wall_floor = layout.logins * latency / CHECK_CONCURRENCY
    where, driver = ("PostgreSQL, ", "asyncpg") if postgres else ("", "aiosqlite")
    label = f"Sweep, {layout.accounts} accounts, {where}its I/O alone (httpx, {driver}; no bot)"
    rows = [
        Row(label, "wall time / floor", result["wall"] / wall_floor, "x"),
        Row(label, "CPU per account checked", result["cpu"] / layout.accounts * 1000, "ms", "", 3),
    ]
    if aiogram_floor is not None:
        above = (result["peak_rss"] - aiogram_floor) / MB
        rows.append(Row(label, "peak RSS above the floor, the stack imported", above, "MB", "", 1))
    return rows


@dataclass(frozen=True)
class Point:
    """One bot on SQLite at one size: its sweep, then idle with nothing due."""

    sweep: Sweep
    idle: Idle


def growth_rows(points: list[Point], floor: int) -> list[Row]:
    """CPU per account, memory above what importing aiogram takes (and how it grows from the
    smallest size), and idle CPU, by size; the targets apply to the largest."""
    rows = []
    first = points[0].sweep
    for point in points:
        sweep, last = point.sweep, point is points[-1]
        label = f"Growth, {sweep.accounts} accounts, SQLite"
        above = (sweep.peak_rss - floor) / MB
        rows += [
            Row(label, "bot CPU per account checked", sweep.cpu_per_check * 1000, "ms", "", 3),
            Row(label, "bot peak RSS above the floor", above, "MB", "< 100" if last else "", 1),
        ]
        if sweep is not first:
            more = (sweep.accounts - first.accounts) / 1000
            growth = (sweep.peak_rss - first.peak_rss) / MB / more
            measure = f"... grown per 1,000 accounts over {first.accounts}"
            rows.append(Row(label, measure, growth, "MB", "", 2))
        rows += [
            Row(label, "bot RSS above the floor, idle", (point.idle.rss - floor) / MB, "MB", "", 1),
            Row(
                label,
                f"bot CPU, idle {point.idle.seconds:g} s, nothing due",
                point.idle.cpu_share * 100,
                "% of a core",
                "< 2" if last else "",
            ),
        ]
    return rows


def idle_rows(point: Point, seconds: float, floor: int) -> list[Row]:
    """Idle after the big sweep, `seconds` long, against the bare-import floor (bytes)."""
    label = f"Idle, {point.sweep.accounts} accounts, {seconds:g} s"
    as_the_bot = aiogram_floor(as_the_bot=True) / MB
    return [
        Row(label, "bot CPU", point.idle.cpu_share * 100, "% of a core", "", 2),
        Row(label, "bot RSS", point.idle.rss / MB, "MB", "< 200", 1),
        Row(label, "floor: a bare `import aiogram`", floor / MB, "MB", "", 1),
        Row(label, "aiogram imported as the bot does, models built when used", as_the_bot, "MB"),
        Row(
            label,
            "bot RSS above the floor",
            (point.idle.rss - floor) / MB,
            "MB",
            "<= 50",
            1,
        ),
        Row(
            label,
            "bot peak RSS above the floor, all run",
            (point.idle.peak_rss - floor) / MB,
            "MB",
            "<= 50",
            1,
        ),
    ]


def fan_out_rows(layout: Layout, fan: FanOut, throttled_share: float) -> list[Row]:
    per_second = TELEGRAM_PER_SECOND
    label = f"Alert fan-out, {layout.chats} chats, {round(throttled_share * 100)}% sends 429"
    return [
        Row(label, "time until every alert delivered", fan.wall, "s"),
        Row(label, f"floor: {layout.chats} / {per_second} a second", fan.floor, "s"),
        Row(label, "sends per second, those answered 429 included", fan.sends_per_second, "/s"),
        Row(label, "alerts delivered per second", fan.per_second, "/s"),
        Row(label, "share of Telegram's 30/s", fan.per_second / per_second * 100, "%", ">= 90", 1),
        Row(
            label,
            "bot CPU per delivered notification, after the sweep",
            fan.cpu_per_delivered * 1000,
            "ms",
            "<= 1.5",
            3,
        ),
        Row(label, "delivered", fan.delivered, "", str(layout.chats), 0),
        Row(label, "lost", fan.lost, "", "0", 0),
        Row(label, "duplicated", fan.duplicated, "", "0", 0),
        Row(label, "sends answered 429", fan.throttled, "", "", 0),
    ]
