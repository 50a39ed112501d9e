"""The outbox's pacing in Redis (`bot.alerting.pacing.Pacer`), so Telegram's limits hold for
all replicas of one bot together: Telegram counts messages per bot, not per process.

A chat's gap is a key that expires (`SET NX PX`): whoever sets it has the chat's next send,
and nobody else gets one until it expires; its time to live (`PTTL`, in the same round trip)
tells when a held chat frees. The overall rate is one key holding the time of
the latest group of places, how many are left in it and its latest place (see PLACES_AT_ONCE
and JOIN), moved on by a Lua script on Redis's own clock (`TIME`), so replicas whose clocks
differ still space their sends; a replica only ever sleeps the delay Redis handed it.
Every Redis failure becomes `PacingUnavailable`: the outbox then sends nothing until Redis is
back, rather than sending unpaced.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.alerting.pacing import (
    GATHER,
    GROUP_CHAT_GAP,
    HEADROOM,
    JOIN,
    MESSAGES_PER_SECOND,
    PLACES_AT_ONCE,
    PRIVATE_CHAT_GAP,
    PacingUnavailable,
    Taken,
    chat_gap,
)

# Then the bot's id: Telegram's limits are the bot's, so every deployment of one bot shares
# them, and two bots sharing a Redis (staging and production, say) do not slow each other.
PREFIX = "smscbot:pace:"

# KEYS: the latest group of places, "<its time>:<places left>:<its latest place>", times in
# microseconds. ARGV: microseconds from one group to the next, places in a group, GATHER and
# JOIN in microseconds. -> microseconds to wait for the place just taken (as MemoryPacer.place).
_PLACE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local span = tonumber(ARGV[1])
local group, left, last = -span, 0, -span
local state = redis.call('GET', KEYS[1])
if state then
  local at, places, latest = string.match(state, '^(%d+):(%d+):(%d+)$')
  group, left, last = tonumber(at), tonumber(places), tonumber(latest)
end
if left == 0 or group + tonumber(ARGV[4]) < now then
  group = math.max(now + tonumber(ARGV[3]), last + span)
  last = group
  left = tonumber(ARGV[2])
end
last = math.max(last, now)
local ttl = math.ceil((last + span - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f:%d:%.0f', group, left - 1, last), 'PX', ttl)
return math.max(0, group - now)
"""


class RedisPacer:
    """Telegram's limits for the fleet, shared through `redis` (the wiring's client)."""

    def __init__(
        self,
        redis: Redis,
        *,
        bot_id: int,
        per_second: float = MESSAGES_PER_SECOND,
        private_gap: float = PRIVATE_CHAT_GAP,
        group_gap: float = GROUP_CHAT_GAP,
    ) -> None:
        self._redis = redis
        self._prefix = f"{PREFIX}{bot_id}:"
        # Rounded up: rounded to the nearest (222,222 µs for 6 at 27 a second), five spans fell a
        # microsecond short of the second and a ninth a group may be late by (see HEADROOM).
        self._span_us = math.ceil(PLACES_AT_ONCE * 1_000_000 / (per_second * HEADROOM))
        self._private_gap, self._group_gap = private_gap, group_gap
        self._place = redis.register_script(_PLACE)

    async def take(self, chat_ids: Iterable[int]) -> Taken:
        chats = list(chat_ids)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for chat_id in chats:
                    key = self._chat_key(chat_id)
                    pipe.set(key, 1, nx=True, px=self._gap_ms(chat_id, None))
                    pipe.pttl(key)
                answers = await pipe.execute()
        except (RedisError, OSError) as error:
            raise PacingUnavailable(repr(error)) from error
        taken, next_free = set(), None
        for chat_id, ok, left_ms in zip(chats, answers[::2], answers[1::2], strict=True):
            if ok:
                taken.add(chat_id)
            else:  # held; gone since the SET (PTTL -2): free now
                free_in = max(int(left_ms), 0) / 1000
                next_free = free_in if next_free is None else min(next_free, free_in)
        return Taken(taken, next_free)

    async def hold(self, chat_id: int, seconds: float | None = None) -> None:
        try:
            await self._redis.set(self._chat_key(chat_id), 1, px=self._gap_ms(chat_id, seconds))
        except (RedisError, OSError) as error:
            raise PacingUnavailable(repr(error)) from error

    async def place(self) -> float:
        try:
            wait_us = await self._place(
                keys=[self._prefix + "group"],
                args=[
                    self._span_us,
                    PLACES_AT_ONCE,
                    round(GATHER * 1_000_000),
                    round(JOIN * 1_000_000),
                ],
            )
        except (RedisError, OSError) as error:
            raise PacingUnavailable(repr(error)) from error
        return int(wait_us) / 1_000_000

    def _chat_key(self, chat_id: int) -> str:
        return f"{self._prefix}chat:{chat_id}"

    def _gap_ms(self, chat_id: int, seconds: float | None) -> int:
        if seconds is None:
            seconds = chat_gap(chat_id, self._private_gap, self._group_gap)
        return max(1, math.ceil(seconds * 1000))
