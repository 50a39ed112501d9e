"""SQLite's side of the storage: the data folder and the database file, made before anything is
written; the features the bot's statements need of the SQLite this Python was built with; and
each connection's set-up."""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import SettingsError


def prepare_data_dir(data_dir: Path) -> None:
    """The folder of the database and the key: created readable by the owner only, and
    writable, or SettingsError before anything is written."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise SettingsError(
            f"DATABASE_URL: cannot create the data folder {data_dir} ({error.strerror}); "
            "create it for this user, or point DATABASE_URL elsewhere"
        ) from None
    # Tried, not asked (os.access): root passes every permission check, yet a read-only mount
    # (a container volume, say) still refuses the database and the key.
    try:
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as error:
        raise SettingsError(
            f"DATABASE_URL: the data folder {data_dir} is not writable by this user "
            f"(uid {os.getuid()}: {error.strerror}); chown it, or point DATABASE_URL elsewhere"
        ) from None


def create_database_file(url: str) -> None:
    """An SQLite database file not yet there is created empty, readable by the owner only:
    SQLite would make it with the umask (often readable by all), and gives its -wal and
    -shm files the database file's permissions. SettingsError first if this Python's SQLite
    lacks what the bot's statements use (`require_sqlite_features`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    require_sqlite_features()
    if parsed.database in (None, "", ":memory:"):
        return
    database = parsed.database
    fd = os.open(database, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


def require_sqlite_features() -> None:
    """SettingsError unless the SQLite this Python was built with has RETURNING (3.35, the
    claims) and JSON (`json_each`, the checks' reads: built in since 3.38, in most builds
    before)."""
    try:
        with sqlite3.connect(":memory:") as probe:
            probe.execute("SELECT value FROM json_each('[1]')")
        json = True
    except sqlite3.DatabaseError:  # without JSON: "no such table: json_each"
        json = False
    features = (("RETURNING", sqlite3.sqlite_version_info >= (3, 35)), ("JSON", json))
    if missing := [name for name, present in features if not present]:
        raise SettingsError(
            f"DATABASE_URL: this Python's SQLite {sqlite3.sqlite_version} lacks "
            f"{' and '.join(missing)}; the bot needs SQLite 3.35 or newer with JSON (a newer OS "
            "or Python build), or PostgreSQL"
        )


def configured(engine: AsyncEngine) -> AsyncEngine:
    """`engine` (made with `pool_reset_on_return=None`) set up for SQLite: each connection's
    pragmas, and the pool's reset on return."""
    event.listen(engine.sync_engine, "connect", _configure)
    event.listen(engine.sync_engine, "reset", _reset)
    return engine


def _reset(dbapi_connection, record, reset_state) -> None:
    # The pool's own reset rolls back every connection given back, a trip to aiosqlite's thread
    # even after a commit (a sweep's every write, and most of the outbox's). Only one still in a
    # transaction (its user failed before committing or rolling back) needs it.
    if not reset_state.terminate_only and record.driver_connection.in_transaction:
        dbapi_connection.rollback()
    # After its transaction, where SQLite takes the pragma: the next user's cascades work.
    if record.info.pop(_FOREIGN_KEYS_OFF, False) and not reset_state.terminate_only:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


def _configure(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Cascades need foreign keys on; WAL lets handlers read while a check writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# Marks a connection whose foreign keys are off until it is given back to the pool.
_FOREIGN_KEYS_OFF = "foreign_keys_off"


def begin_migrations(connection: Connection) -> None:
    """Foreign keys off on `connection` (one of `configured`'s engine) for the migrations, on
    again when it goes back to the pool, and a transaction begun for them all.

    Alembic's batch mode changes a table by copying it and dropping the old one: with foreign
    keys on, dropping `chats` deletes every account, sample and notification by their ON DELETE
    CASCADE. The driver begins a transaction only at the first INSERT or UPDATE, after the copy
    is created: begun here, a failed migration leaves no table behind. RuntimeError if a
    transaction is under way already, where SQLite ignores the pragma."""
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("foreign keys stay on: the migrations must start outside a transaction")
    connection.connection.info[_FOREIGN_KEYS_OFF] = True
    connection.exec_driver_sql("BEGIN")


def broken_references(connection: Connection) -> list[str]:
    """Each table with rows referring to a row not there, as "table -> parent (count)"."""
    found: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _key in connection.exec_driver_sql("PRAGMA foreign_key_check"):
        found[table, parent] = found.get((table, parent), 0) + 1
    return [f"{table} -> {parent} ({count})" for (table, parent), count in found.items()]
