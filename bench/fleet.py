"""The sweep on PostgreSQL and Redis, by one replica and by two (webhook mode, one database, one
Redis, LEASE_SECONDS as by default): the servers are given (`--postgres`, `--redis`: the tests
pass theirs) or started for the benchmark from their wheels (tests/real_servers.py)."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from redis import Redis

from bench import scenarios
from bench.data import Layout
from bench.harness import BotRun
from tests import real_servers

_databases = itertools.count(1)


@contextmanager
def servers(postgres: str | None, redis: str | None) -> Iterator[tuple[str, str]]:
    """The admin URL of a PostgreSQL server and the URL of a Redis: those given, or started
    now and stopped afterwards."""
    with ExitStack() as stack:
        if postgres is None:
            postgres = stack.enter_context(real_servers.postgres())
        if redis is None:
            redis = stack.enter_context(real_servers.redis())
        yield postgres, redis


@contextmanager
def fresh(postgres: str, redis: str) -> Iterator[str]:
    """A new database on the server (dropped afterwards) and Redis emptied: no run sees
    another's data, nor the guard's cached balances of the same logins."""
    name = f"bench_{os.getpid()}_{next(_databases)}"
    asyncio.run(real_servers.admin(postgres, f"CREATE DATABASE {name}"))
    client = Redis.from_url(redis)
    try:
        client.flushdb()
    finally:
        client.close()
    try:
        yield real_servers.database_url(postgres, name)
    finally:
        asyncio.run(real_servers.admin(postgres, f"DROP DATABASE {name} WITH (FORCE)"))


def sweeps(
    work: Path,
    layout: Layout,
    *,
    latency: float,
    timeout: float,
    settle: float,
    postgres: str,
    redis: str,
) -> dict[int, scenarios.Sweep]:
    """The sweep by one replica, then by two, each on a database of its own; by replicas."""
    results = {}
    for replicas in (1, 2):
        with (
            fresh(postgres, redis) as database,
            BotRun(
                work / f"postgres-{replicas}",
                layout,
                latency=latency,
                database=database,
                redis=redis,
                replicas=replicas,
            ) as bot,
        ):
            results[replicas] = scenarios.sweep(bot, timeout=timeout, settle=settle)
    return results
