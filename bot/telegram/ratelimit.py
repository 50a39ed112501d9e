"""A per-chat budget of heavy work, so that no member can keep the bot busy for everyone.

Units are what the caller says (for /history: one chart panel of a month). A chat may spend
`burst` units at once and gets one back every `refill_seconds`. Kept as the moment each
chat's budget is full again (the generic cell rate algorithm): one number per chat.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class WorkBudget:
    def __init__(
        self,
        *,
        burst: float,
        refill_seconds: float,
        max_chats: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._burst = burst
        self._refill = refill_seconds
        self._max_chats = max_chats
        self._clock = clock
        self._full_at: dict[int, float] = {}  # least recently spent first

    def spend(self, chat_id: int, cost: float) -> float:
        """Spend `cost` units and return 0, or spend nothing and return the seconds to wait
        until they are there. A cost above `burst` is charged as `burst`."""
        now = self._clock()
        # Counted as seconds of debt from now, not as clock times: a fresh chat's debt is then
        # exactly the charge, and the largest request fits the burst without rounding error.
        debt = max(self._full_at.get(chat_id, now) - now, 0.0)
        debt += min(cost, self._burst) * self._refill
        wait = debt - self._burst * self._refill
        if wait > 0:
            return wait
        self._full_at.pop(chat_id, None)  # to the end of the order
        self._full_at[chat_id] = now + debt
        if len(self._full_at) > self._max_chats:
            self._forget(now)
        return 0.0

    def _forget(self, now: float) -> None:
        # A chat whose budget is full again is as good as unknown. If all are still spending,
        # the least recent is forgotten: that chat gets its budget back early, memory stays bounded.
        self._full_at = {chat: at for chat, at in self._full_at.items() if at > now}
        while len(self._full_at) > self._max_chats:
            del self._full_at[next(iter(self._full_at))]
