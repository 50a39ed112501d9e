"""Tests check what the bot did: its calls, messages, edits, deletions, transcripts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.fake_telegram.constants import Json, T
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.params import _scope_key
from tests.fake_telegram.records import Call


class ObserveMixin(FakeTelegramCore):
    """Read what the bot did, and wait for it."""

    # ----- what the bot did ------------------------------------------------------------

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._lock:
            return list(self._calls_by.get((method, chat_id), ()))

    def sent(self, chat_id: int | None = None) -> list[Json]:
        """Messages the bot sent successfully, in order, as they are now (after edits).

        Each is the Telegram message plus ``reply_markup`` (of any kind),
        ``disable_notification``, ``message_thread_id`` and ``photo_bytes``/``document_bytes``.
        """
        with self._lock:
            stored = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
            return [{**s.message, **s.extras} for s in stored]

    def deleted(self, chat_id: int) -> list[int]:
        with self._lock:
            return list(self._deleted.get(chat_id, ()))

    def edits(self, chat_id: int) -> list[Call]:
        with self._lock:
            return list(self._edits.get(chat_id, ()))

    def transcript(self, chat_id: int) -> list[str]:
        with self._lock:
            return list(self._lines.get(chat_id, ()))

    def commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        """The command list set by setMyCommands for that scope and language."""
        with self._lock:
            return list(self._commands.get((_scope_key(scope), language_code), ()))

    @property
    def updates_pending(self) -> int:
        """Queued updates getUpdates has not yet handed out (or skipped as not allowed), or
        the webhook not yet delivered."""
        with self._lock:
            return self._last_update_id - self._fetched_upto + self._in_delivery

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Block until ``predicate()`` is truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                version = self._version
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(timeout))
            with self._cond:  # woken by any change; re-check now and then for outside state
                if self._version == version:
                    self._cond.wait(min(remaining, 0.05))

    async def await_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:  # noqa: ASYNC109
        """``wait_for`` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_report(timeout))
            await asyncio.sleep(0.01)
        return value

    def _timeout_report(self, timeout: float) -> str:
        with self._lock:
            lines = list(self._tail)
            errors = [f"{c.method}: {c.error}" for c in self.calls[-200:] if c.error]
        report = [f"condition not met within {timeout}s; last transcript lines (chat: line):"]
        report += [f"  {line}" for line in lines] or ["  (none)"]
        if errors:
            report += ["errors answered recently:", *(f"  {e}" for e in errors[-10:])]
        if self.server_errors:
            report += ["fake server errors:", *(f"  {e}" for e in self.server_errors[-5:])]
        return "\n".join(report)
