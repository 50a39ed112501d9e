"""The process's memory (bot.memory): one malloc arena, and freed heap handed back to the system
after every full garbage collection, not after the frequent young ones."""

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
