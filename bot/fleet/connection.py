"""The one Redis client of a replica (REDIS_URL): dialogs, event isolation, the guard's limits
and the outbox's pacing all go through it; the wiring creates it, checks it at start
(`answers`) and closes it last."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import AuthenticationError, ConnectionError, TimeoutError

from bot import logs
from bot.config import SettingsError

# A Redis that stops answering must cost a hot path a couple of seconds, not redis-py's
# default of several retries seconds apart: the guard then refuses (fails closed) and the
# outbox's pass is retried, each with one log line.
TIMEOUT = 2.0
RETRIES = 1

# A Redis not reached (yet): a server starting after the bot, a network blip. To redis-py a
# refused password is a ConnectionError too; `answers` makes it a bad setting before.
NOT_ANSWERING = (ConnectionError, TimeoutError)


def connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), RETRIES),
        health_check_interval=30,
    )


async def answers(redis: Redis) -> None:
    """One PING. A Redis that refuses the password, or wants one and was given none, answers
    every later command the same: a bad REDIS_URL, not an outage to wait out. (redis-py ≥ 4.4
    raises AuthenticationError for Redis 6/7's and Valkey's WRONGPASS and NOAUTH alike.)"""
    try:
        await redis.ping()
    except AuthenticationError as error:
        reason = logs.mask(str(error)).partition("\n")[0]
        raise SettingsError(
            f"REDIS_URL: Redis refused the password: {type(error).__name__}: {reason}"
        ) from None
