"""Database engine, sessions, and schema migrations (Alembic) applied at start-up."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bot.config import SettingsError

# An installed wheel carries the Alembic revisions inside the package (see pyproject.toml); a
# checkout, editable install included, keeps them at the top level where `alembic` is run.
_INSTALLED_MIGRATIONS = Path(__file__).resolve().parent.parent / "_migrations"
MIGRATIONS_DIR = (
    _INSTALLED_MIGRATIONS
    if _INSTALLED_MIGRATIONS.is_dir()
    else _INSTALLED_MIGRATIONS.parent.parent / "migrations"
)


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
    -shm files the database file's permissions."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    database = parsed.database
    fd = os.open(database, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


def create_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _configure_sqlite)
    return engine


def _configure_sqlite(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # Cascades need foreign keys on; WAL lets handlers read while a check writes.
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# The unit of work as the layers above name it: they hold sessions, the queries stay below.
Session = AsyncSession
Sessions = async_sessionmaker[AsyncSession]


def create_sessionmaker(engine: AsyncEngine) -> Sessions:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision over the app's own engine."""

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
