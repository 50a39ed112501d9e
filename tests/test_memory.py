"""The process's memory (bot.memory): one malloc arena, freed heap handed back to the system
after every full garbage collection, not after the frequent young ones, and young collections
less often than CPython's default."""

import gc

import pytest

from bot import memory


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[int, ...]]] = []

    def mallopt(self, *args: int) -> int:
        self.calls.append(("mallopt", args))
        return 1

    def malloc_trim(self, *args: int) -> int:
        self.calls.append(("malloc_trim", args))
        return 1


@pytest.fixture
def libc(monkeypatch):
    fake = FakeLibc()
    monkeypatch.setattr(memory, "_glibc", lambda: fake)
    callbacks = list(gc.callbacks)
    yield fake
    gc.callbacks[:] = callbacks


def test_all_threads_share_one_arena(libc):
    memory.limit_arenas()
    assert libc.calls == [("mallopt", (memory.M_ARENA_MAX, 1))]


def test_freed_heap_goes_back_after_each_full_collection_only(libc):
    memory.trim_after_collections()
    gc.collect(0)
    gc.collect(1)
    assert libc.calls == []
    gc.collect()
    assert libc.calls == [("malloc_trim", (0,))]


def test_nothing_is_done_without_glibc(monkeypatch):
    monkeypatch.setattr(memory, "_glibc", lambda: None)
    callbacks = list(gc.callbacks)
    memory.limit_arenas()
    memory.trim_after_collections()
    assert gc.callbacks == callbacks


def test_this_interpreter_has_glibc_malloc():
    # The bot's image and CI run on glibc: were the lookup to fail, nothing would be trimmed.
    assert memory._glibc() is not None


@pytest.fixture
def collections():
    """Each collection's generation, while the test runs; the thresholds restored after."""
    thresholds = gc.get_threshold()
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    yield seen
    gc.callbacks.remove(count)
    gc.set_threshold(*thresholds)


def test_thousands_of_live_rows_cost_no_collection(collections):
    # A write of a sweep's batch holds thousands of rows alive at once: with CPython's default
    # (a young collection every 700 objects) each such batch was walked again and again.
    gc.collect()
    collections.clear()
    memory.collect_less_often()
    rows = [{"id": n} for n in range(memory.YOUNG_COLLECTION_EVERY // 2)]
    assert collections == []
    gc.set_threshold(700, *gc.get_threshold()[1:])
    rows += [{"id": n} for n in range(memory.YOUNG_COLLECTION_EVERY // 2)]
    assert collections  # the same rows under the default: the test can fail
    assert len(rows) == memory.YOUNG_COLLECTION_EVERY
