"""How the process keeps its memory (glibc's malloc; elsewhere, e.g. musl, nothing is done).

A sweep, or a burst of commands, frees most of what it allocated, yet the memory stays
resident: glibc gives each thread that allocates (the SQLite connections' threads) an arena
of its own, and keeps freed pages inside its heaps for reuse. One arena for all threads, and
freed pages handed back to the system after each full garbage collection, keep an idle bot
near its size at start (BENCHMARKS.md: ≈ 10 MB less after a sweep of 10,000 accounts).
Young collections come less often than CPython's default, for the CPU (see collect_less_often).
"""

from __future__ import annotations

import ctypes
import gc

M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's <malloc.h>
# Container objects allocated, net of those freed, between two young collections (CPython's
# default is 700).
YOUNG_COLLECTION_EVERY = 10_000


def _glibc() -> ctypes.CDLL | None:
    libc = ctypes.CDLL(None)  # the symbols the interpreter is linked with, libc's included
    return libc if hasattr(libc, "malloc_trim") else None


def limit_arenas() -> None:
    """All threads allocate from one arena (as MALLOC_ARENA_MAX=1 would): a thread's own
    arena keeps what it freed. To be called before any thread starts; the threads barely
    contend (they wait on SQLite, not on malloc)."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, 1)


def trim_after_collections() -> None:
    """After every full collection, freed heap pages go back to the system (malloc_trim).
    Full collections follow bursts of allocation, never an idle bot, and a trim costs
    microseconds beside the collection's milliseconds."""
    libc = _glibc()
    if libc is None:
        return
    trim = libc.malloc_trim

    def after(phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            trim(0)

    gc.callbacks.append(after)


def collect_less_often() -> None:
    """Young collections every YOUNG_COLLECTION_EVERY objects, not every 700. The bot's objects
    are freed by their reference counts, so the collector finds little garbage, yet a sweep
    of 10,000 accounts holds thousands of rows alive at a time: with the default, it ran ≈ 170
    young and 15 middle collections through each sweep, 58-154 ms of CPU (6-15 µs an account);
    now 3, 10-26 ms (BENCHMARKS.md). The older generations keep their thresholds, relative to
    this one."""
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, middle, old)
