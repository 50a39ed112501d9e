"""The lock that keeps a second bot process off a database it would share without knowing."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.config import SettingsError

log = logging.getLogger(__name__)

# The PostgreSQL advisory lock key, as engine.MIGRATION_LOCK: the bytes "smscproc".
PROCESS_LOCK = int.from_bytes(b"smscproc")

REFUSED_SOLO = (
    "another bot process is using this database; stop it, or run several replicas with "
    "PostgreSQL and REDIS_URL (see README)"
)
REFUSED_REPLICA = (
    "a bot process without REDIS_URL is using this database; stop it, or give it REDIS_URL "
    "like the other replicas (see README)"
)


# How often a PostgreSQL process lock is checked (see single_instance): a restart of the server
# ends the session that held it, and another process may take it from the next instant on.
LOCK_CHECK_SECONDS = 5.0


@asynccontextmanager
async def single_instance(
    engine: AsyncEngine, *, fleet: bool, on_lost: Callable[[str], None] | None = None
) -> AsyncIterator[None]:
    """Held for the process's life: a second process on the same database would check every
    account and send every alert twice. Replicas of a fleet (REDIS_URL, PostgreSQL) share the
    work and so share the lock; a lone process takes it alone, so a fleet and a lone process
    refuse each other too. SettingsError when refused. The OS (a file lock) or the server (a
    lock of the session) lets go when the process dies, however it dies.

    On PostgreSQL the lock goes with its session when the server restarts: with `on_lost`, it
    is checked every LOCK_CHECK_SECONDS and taken again once the server answers, and should
    another process have taken it meanwhile, `on_lost` is called with why (the process is to
    stop rather than run beside that one). Without (copy-data), it lasts as its connection
    does: a restart fails the copy anyway."""
    if engine.dialect.name == "postgresql":
        async with _advisory_lock(engine, shared=fleet, on_lost=on_lost):
            yield
        return
    database = engine.url.database
    if database in (None, "", ":memory:"):  # no other process can open it
        yield
        return
    # SQLite has one writer: even a fleet's replicas cannot share it, so the lock is exclusive.
    fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SettingsError(REFUSED_SOLO) from None
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


@asynccontextmanager
async def _advisory_lock(
    engine: AsyncEngine, *, shared: bool, on_lost: Callable[[str], None] | None
) -> AsyncIterator[None]:
    refused = REFUSED_REPLICA if shared else REFUSED_SOLO
    connection = await _take_lock(engine, shared=shared)
    if connection is None:
        raise SettingsError(refused)

    async def keep() -> None:
        nonlocal connection
        assert on_lost is not None
        while True:
            await asyncio.sleep(LOCK_CHECK_SECONDS)
            if connection is not None:
                try:
                    await connection.exec_driver_sql("SELECT 1")
                    continue
                except (DBAPIError, OSError):  # the session, and the lock with it, is gone
                    await connection.invalidate()
                    await connection.close()
                    connection = None
                    log.warning("database lock lost with its connection; taking it again")
            try:
                connection = await _take_lock(engine, shared=shared)
            except (DBAPIError, OSError):  # the server is not back yet
                continue
            if connection is None:
                on_lost(
                    "the database lock went with its connection (a server restart, a dropped "
                    f"connection): {refused}"
                )
                return
            log.info("database lock taken again")

    keeper = asyncio.create_task(keep(), name="database lock") if on_lost else None
    try:
        yield
    finally:
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        if connection is not None:
            unlock = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
            try:
                await connection.execute(text(f"SELECT {unlock}(:key)"), {"key": PROCESS_LOCK})
            except DBAPIError:  # the connection is gone, and the lock went with it
                await connection.invalidate()
            await connection.close()


async def _take_lock(engine: AsyncEngine, *, shared: bool) -> AsyncConnection | None:
    """A connection holding the process lock, or None when another process holds it.

    A session-level lock lives as long as its connection: one kept open, outside any
    transaction (autocommit), so it neither idles in a transaction nor goes back to the pool
    still holding the lock."""
    function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    connection = await engine.connect()
    try:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        if await connection.scalar(text(f"SELECT {function}(:key)"), {"key": PROCESS_LOCK}):
            return connection
    except BaseException:
        await connection.close()
        raise
    await connection.close()
    return None
