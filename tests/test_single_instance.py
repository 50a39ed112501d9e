"""A second process on the same database refuses to start, unless both are replicas of a
fleet (PostgreSQL and REDIS_URL); a process that ends lets the next one start."""

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SettingsError
from bot.storage import instance
from bot.storage.engine import create_engine
from bot.storage.instance import single_instance
from tests import real_servers
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


async def _restart_sessions(url: str) -> None:
    """What a PostgreSQL restart does to the processes' locks: every session of the database
    ends, and the session-level locks with them."""
    await real_servers.admin(
        url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )


async def _refused(start: Callable[[], object], within: float = 5.0) -> bool:
    """Whether a lone process trying to start every 0.05 s is refused within `within` s."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        try:
            async with start():
                pass
        except SettingsError:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize("fleet", [True, False])
async def test_the_lock_is_taken_again_after_a_postgresql_restart(postgres_url, monkeypatch, fleet):
    monkeypatch.setattr(instance, "LOCK_CHECK_SECONDS", 0.1)
    lost: list[str] = []
    async with processes(postgres_url) as process:
        async with AsyncExitStack() as held:
            for _ in range(2 if fleet else 1):
                await held.enter_async_context(
                    single_instance(process(), fleet=fleet, on_lost=lost.append)
                )
            await _restart_sessions(postgres_url)
            # Within a few checks the lock is back: a lone process started now is refused.
            assert await _refused(lambda: single_instance(process(), fleet=False))
        assert lost == []
        async with single_instance(process(), fleet=False):  # released on exit
            pass


async def test_a_process_whose_lock_was_taken_meanwhile_is_told_to_stop(postgres_url, monkeypatch):
    monkeypatch.setattr(instance, "LOCK_CHECK_SECONDS", 0.3)
    lost: list[str] = []
    async with processes(postgres_url) as process:
        async with single_instance(process(), fleet=True, on_lost=lost.append):
            await _restart_sessions(postgres_url)
            # A lone process started in the instant before the replica's next check.
            async with single_instance(process(), fleet=False):
                for _ in range(40):
                    if lost:
                        break
                    await asyncio.sleep(0.05)
        assert lost == [
            "the database lock went with its connection (a server restart, a dropped connection): "
            "a bot process without REDIS_URL is using this database; stop it, or give it "
            "REDIS_URL like the other replicas (see README)"
        ]
