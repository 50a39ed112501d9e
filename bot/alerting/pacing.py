"""Telegram's sending limits as the outbox keeps them: a gap between two messages to one chat,
and a place for every message under the bot's overall rate.

Behind the `Pacer` Protocol so that one process keeps them in memory (`MemoryPacer`) and
several replicas of one bot share them (bot.fleet.pacing.RedisPacer): Telegram counts per
bot, not per process, so replicas pacing each on its own would together send too fast.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

# Telegram's documented limits: ~30 messages a second in all, ~1 a second to one chat,
# 20 a minute to one group.
MESSAGES_PER_SECOND = 30
PRIVATE_CHAT_GAP = 1.0
GROUP_CHAT_GAP = 3.0
# Places go at this share of the overall rate: a send leaves a little after its place (a busy
# event loop wakes late, a shared place comes back from Redis), and unevenly so. At 27 a
# second, one send may be 0.1 s later than the 30th after it before a second holds 31.
HEADROOM = 0.9
# Places are handed out this many at a time, for one moment, the moments as far apart as that
# many places (2/9 s): the event loop wakes once for the group. Each wake-up from idle costs CPU
# of its own: a fan-out spent ≈ 3.2-3.6 ms of CPU a message at one place a moment, 1.5-2.2 at
# three, 1.1-1.5 at six (bench, 1,000 alerts). A divisor of 30: a second from a group holds
# five, Telegram's 30, and the sixth comes a second and a ninth after the first, the lateness
# HEADROOM leaves, as with groups of three (with nine the fourth group would come a second after
# the first: 36 sends in a second). The outbox sends more at once (outbox.SENDS_AT_ONCE). A
# send may wait up to a span for its place when a group just went.
PLACES_AT_ONCE = 6
# A group begun when nobody waits starts this much later, so that the sends asking right
# after it (an outbox pass sends several) go with it.
GATHER = 0.005
# A group's places left are still given this long after its moment, to go at once; the next
# group keeps its distance from the latest of them. Chats sent at one moment are answered, so
# freed for their next message, milliseconds apart, and the first one freed went alone: without
# this the others missed its group by a pass and waited for the next (a backlog went out 1.13 s
# a chat message, not 1.02).
JOIN = 0.05


class PacingUnavailable(Exception):
    """The pacer's shared state cannot be reached: nothing may be sent until it can, since
    a send unpaced could break the limits for the whole fleet."""


@dataclass(frozen=True)
class Taken:
    chats: set[int]  # free to get a message now, and now held for it
    # Seconds until the first of the others is free again; None if none was held. The outbox
    # sleeps that long, not a fixed poll: a backlog then goes out at the chats' own pace.
    next_free: float | None = None


class Pacer(Protocol):
    async def take(self, chat_ids: Iterable[int]) -> Taken:
        """The chats among `chat_ids` free to get a message now; each is then held for its gap,
        so no other pass (nor replica) takes it meanwhile."""
        ...

    async def hold(self, chat_id: int, seconds: float | None = None) -> None:
        """Hold the chat for `seconds` from now, its gap if None: called when Telegram has
        answered, so the next message keeps the gap however long this one waited to go."""
        ...

    async def place(self) -> float:
        """Reserve the next place under MESSAGES_PER_SECOND: the seconds to wait for it (see
        PLACES_AT_ONCE)."""
        ...


def chat_gap(chat_id: int, private_gap: float, group_gap: float) -> float:
    """Private chats have positive ids; groups, supergroups and channels negative ones."""
    return private_gap if chat_id > 0 else group_gap


class MemoryPacer:
    """The limits for one process, on its monotonic clock."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        per_second: float = MESSAGES_PER_SECOND,
        private_gap: float = PRIVATE_CHAT_GAP,
        group_gap: float = GROUP_CHAT_GAP,
    ) -> None:
        self._clock = clock
        self._span = PLACES_AT_ONCE / (per_second * HEADROOM)  # from one group to the next
        self._private_gap, self._group_gap = private_gap, group_gap
        self._chat_free_at: dict[int, float] = {}  # clock time a chat may get the next message
        self._group_at = -self._span  # clock time of the latest group of places
        self._left = 0  # places left in it
        self._last = -self._span  # clock time of its latest place (a late joiner's)

    async def take(self, chat_ids: Iterable[int]) -> Taken:
        now = self._clock()
        taken, next_free = set(), None
        for chat_id in chat_ids:
            free_at = self._chat_free_at.get(chat_id, 0.0)
            if free_at <= now:
                self._hold(chat_id, None, now)
                taken.add(chat_id)
            elif next_free is None or free_at - now < next_free:
                next_free = free_at - now
        return Taken(taken, next_free)

    async def hold(self, chat_id: int, seconds: float | None = None) -> None:
        self._hold(chat_id, seconds, self._clock())

    def _hold(self, chat_id: int, seconds: float | None, now: float) -> None:
        if seconds is None:
            seconds = chat_gap(chat_id, self._private_gap, self._group_gap)
        self._chat_free_at[chat_id] = now + seconds

    async def place(self) -> float:
        now = self._clock()
        if self._left == 0 or self._group_at + JOIN < now:
            self._group_at = self._last = max(now + GATHER, self._last + self._span)
            self._left = PLACES_AT_ONCE
        self._left -= 1
        self._last = max(self._last, now)
        return max(0.0, self._group_at - now)
