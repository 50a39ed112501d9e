"""`python -m bot backup <file>`: a consistent copy of the SQLite database, while the bot runs.

SQLite's online backup API copies the database as one read transaction sees it: in WAL mode
the bot goes on writing meanwhile, and what it commits after the copy began is not in it.
The copy is written beside the target and renamed over it only when complete, owner-only,
as a single file (no -wal beside it), so it is restored by copying it back.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from contextlib import closing, suppress
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import load_settings
from bot.config.sections import DatabaseSettings
from bot.storage.crypto import KEY_FILE_NAME


class BackupError(Exception):
    """The backup cannot be made; the message is one line saying why."""


def copy_database(target: Path) -> str:
    """Copy the database to `target`; what to tell the operator, or BackupError/SettingsError."""
    database = sqlite_file(load_settings(DatabaseSettings).database_url)
    if not database.is_file():
        raise BackupError(
            f"there is no database at {database}: run the backup in the bot's folder (where "
            "its .env is), or set DATABASE_URL"
        )
    try:
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as error:
        raise BackupError(f"cannot write the backup to {target}: {error.strerror}") from None
    os.close(handle)
    try:
        _copy(database, Path(partial))
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as error:
        reason = error.strerror if isinstance(error, OSError) else error
        raise BackupError(f"cannot copy {database} to {target}: {reason}") from None
    finally:
        with suppress(FileNotFoundError):  # renamed when complete
            os.unlink(partial)
    key = database.parent / KEY_FILE_NAME
    keep = key if key.is_file() else "the bot's SECRET_KEY"
    return (
        f"backup written to {target} ({target.stat().st_size} bytes).\n"
        f"Keep {keep} with it: without that key the SMSC passwords and API keys in the "
        "backup cannot be read."
    )


def sqlite_file(url: str) -> Path:
    """The database file a DATABASE_URL names, or BackupError."""
    parsed = make_url(url)
    # The backend's name only: the rest of the URL may hold a password.
    if parsed.get_backend_name() != "sqlite":
        raise BackupError(
            f"DATABASE_URL is a {parsed.get_backend_name()} database: back it up with that "
            "database's own tools (this command copies SQLite files)"
        )
    if parsed.database in (None, "", ":memory:"):
        raise BackupError("DATABASE_URL names no database file: nothing to back up")
    return Path(parsed.database)


def _copy(database: Path, destination: Path) -> None:
    # Read-only: the backup never writes to the bot's database. SQLite still creates the -wal
    # and -shm files to read it if the bot is not running (and leaves them); run as root, it
    # gives them the database file's owner, so the bot can still open them.
    source = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    with closing(source), closing(sqlite3.connect(destination)) as copy:
        source.backup(copy)
        # The copy as one self-contained file, as the source's WAL mode came with its pages.
        copy.execute("PRAGMA journal_mode=DELETE")
