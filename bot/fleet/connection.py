"""The one Redis client of a replica (REDIS_URL): dialogs, event isolation, the guard's limits
and the outbox's pacing all go through it; the wiring creates it and closes it last."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# A Redis that stops answering must cost a hot path a couple of seconds, not redis-py's
# default of several retries seconds apart: the guard then refuses (fails closed) and the
# outbox's pass is retried, each with one log line.
TIMEOUT = 2.0
RETRIES = 1


def connect(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), RETRIES),
        health_check_interval=30,
    )
