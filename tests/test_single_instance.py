"""A second process on the same database refuses to start, unless both are replicas of a
fleet (PostgreSQL and REDIS_URL); a process that ends lets the next one start."""

import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SettingsError
from bot.storage.engine import create_engine, single_instance
from tests.servers import BOTH_DATABASES

REFUSED = r"^another bot process is using this database; stop it, or run several replicas"


@asynccontextmanager
async def processes(url: str) -> AsyncIterator[Callable[[], AsyncEngine]]:
    """Engines standing for separate processes (each with its own connections)."""
    async with AsyncExitStack() as stack:

        def process() -> AsyncEngine:
            engine = create_engine(url)
            stack.push_async_callback(engine.dispose)
            return engine

        yield process


@BOTH_DATABASES
async def test_second_lone_process_refused_until_the_first_ends(database_url):
    async with processes(database_url) as process:
        first, second = process(), process()
        async with single_instance(first, fleet=False):
            with pytest.raises(SettingsError, match=REFUSED):
                async with single_instance(second, fleet=False):
                    pass
        async with single_instance(second, fleet=False):  # released on exit
            pass


async def test_fleet_replicas_share_postgresql_and_refuse_a_lone_process(postgres_url):
    async with processes(postgres_url) as process:
        async with single_instance(process(), fleet=False):
            with pytest.raises(SettingsError, match=r"^a bot process without REDIS_URL is using"):
                async with single_instance(process(), fleet=True):
                    pass
        async with AsyncExitStack() as held:
            for _ in range(3):
                await held.enter_async_context(single_instance(process(), fleet=True))
            with pytest.raises(SettingsError, match=REFUSED):
                async with single_instance(process(), fleet=False):
                    pass
        # All replicas ended: a lone process may start.
        async with single_instance(process(), fleet=False):
            pass


async def test_sqlite_serves_one_process_even_with_redis(tmp_path):
    async with processes(f"sqlite+aiosqlite:///{tmp_path}/bot.db") as process:
        first, second = process(), process()
        async with single_instance(first, fleet=True):
            # The lock is a file beside the database, readable by the owner only.
            assert stat.S_IMODE(os.stat(tmp_path / "bot.db.lock").st_mode) == 0o600
            with pytest.raises(SettingsError, match=REFUSED):
                async with single_instance(second, fleet=True):
                    pass
