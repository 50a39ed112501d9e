"""CPU and memory of another process, read from /proc (Linux): no extra dependency."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    cpu: float  # user + system seconds since the process started
    rss: int  # bytes resident now
    peak_rss: int  # bytes: the most ever resident (VmHWM)


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields from the third (state) on: the command name may hold spaces."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2 :].split()


def sample(pid: int) -> Sample:
    fields = _stat(pid)
    utime, stime = int(fields[11]), int(fields[12])
    status = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    return Sample(
        cpu=(utime + stime) / CLOCK_TICKS,
        rss=_kib(status.get("VmRSS", "0 kB")),
        peak_rss=_kib(status.get("VmHWM", "0 kB")),
    )


def tree_cpu(pid: int) -> float:
    """CPU seconds of a server and all its processes: its own, its children's that ended and
    were waited for (a PostgreSQL backend whose connection closed), and those still running."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, ValueError):  # gone meanwhile
                continue
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = _stat(current)
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        pending += children.get(current, [])
    return total / CLOCK_TICKS


def _kib(value: str) -> int:
    return int(value.split()[0]) * 1024


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import platform

    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{_kib(line.partition(':')[2].strip()) / 2**30:.1f} GiB"
                break
    return {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
    }


def combined(samples: list[Sample]) -> Sample:
    """Several processes as one: CPU and RSS summed, the peak the largest single one's (each
    process's VmHWM is its own, reached at its own moment)."""
    return Sample(
        cpu=sum(s.cpu for s in samples),
        rss=sum(s.rss for s in samples),
        peak_rss=max(s.peak_rss for s in samples),
    )


def parent(pid: int) -> int:
    return int(_stat(pid)[1])
