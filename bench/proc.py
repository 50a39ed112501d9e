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


def sample(pid: int) -> Sample:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name (which may hold spaces) start at field 3 (state).
    fields = stat[stat.rindex(")") + 2 :].split()
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
