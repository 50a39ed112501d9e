"""Which webhook updates the replicas have handled. Telegram delivers an update again after a
timeout, a dropped connection, or a replica killed after replying, to whichever replica the
load balancer picks: each is handled once all the same (bot.webhook).

A replica marks an update "under way" (SET NX) before handling it and "done" after. The first
mark runs out soon: a replica killed in the middle of an update leaves no answer, and Telegram's
next delivery of it, after the mark is gone, is handled. The second outlasts Telegram's retries
(a day)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.fleet.updates import MarksUnavailable, Seen

# Longer than an update is under way before Telegram gets its answer: aiogram answers after
# 55 s at most, and goes on with a slower handler in the background.
UNDER_WAY_SECONDS = 90.0
DONE_SECONDS = 24 * 3600


class RedisUpdateMarks:
    """Every method raises MarksUnavailable when Redis does not answer."""

    def __init__(self, redis: Redis, *, bot_id: int, under_way: float = UNDER_WAY_SECONDS) -> None:
        self._redis = redis
        self._prefix = f"smscbot:update:{bot_id}:"
        self._under_way_ms = int(under_way * 1000)

    async def take(self, update_id: int) -> Seen:
        key = f"{self._prefix}{update_id}"
        with _answered():
            if await self._redis.set(key, Seen.UNDER_WAY.value, nx=True, px=self._under_way_ms):
                return Seen.NEW
            mark = await self._redis.get(key)
        # None: the other delivery's mark ran out in between; the next delivery takes it.
        return Seen.DONE if mark == Seen.DONE.value.encode() else Seen.UNDER_WAY

    async def done(self, update_id: int) -> None:
        with _answered():
            await self._redis.set(f"{self._prefix}{update_id}", Seen.DONE.value, ex=DONE_SECONDS)

    async def drop(self, update_id: int) -> None:
        """The update was not handled: its next delivery is."""
        with _answered():
            await self._redis.delete(f"{self._prefix}{update_id}")


@contextlib.contextmanager
def _answered() -> Iterator[None]:
    try:
        yield
    except (RedisError, OSError) as error:
        raise MarksUnavailable(type(error).__name__) from None
