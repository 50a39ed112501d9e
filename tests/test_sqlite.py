"""SQLite's side of the storage: the data folder and the file, what the bot needs of SQLite,
and each connection's set-up (bot.storage.sqlite)."""

import sqlite3
import stat
from pathlib import Path

import pytest

from bot.config import SettingsError
from bot.storage.engine import create_engine, migrate
from bot.storage.models import Chat
from bot.storage.sqlite import create_database_file, prepare_data_dir


def test_data_folder_and_database_file_are_owner_only(tmp_path):
    data = tmp_path / "new" / "data"
    prepare_data_dir(data)
    url = f"sqlite+aiosqlite:///{data}/bot.db"
    create_database_file(url)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE((data / "bot.db").stat().st_mode) == 0o600


async def test_database_side_files_stay_owner_only(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/bot.db"
    create_database_file(url)
    engine = create_engine(url)
    try:
        await migrate(engine)
        async with engine.connect():  # WAL: -wal and -shm exist while a connection is open
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.glob("bot.db*")}
    finally:
        await engine.dispose()
    assert set(modes) >= {"bot.db", "bot.db-wal", "bot.db-shm"}
    assert set(modes.values()) == {0o600}, modes


def test_data_folder_that_cannot_be_made_is_one_line_naming_the_setting(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: cannot create the data folder"):
        prepare_data_dir(tmp_path / "file" / "data")


def test_an_sqlite_too_old_for_the_bot_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 31, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.31.1")
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: .*SQLite 3\.31\.1 lacks RETURNING;"):
        create_database_file(url)
    assert not (tmp_path / "bot.db").exists()
    create_database_file("postgresql+asyncpg://bot@db/bot")  # not SQLite's to say


def test_an_sqlite_without_json_is_one_line_naming_the_setting(tmp_path, monkeypatch):
    connect = sqlite3.connect

    def without_json(*args, **kwargs):
        # As in a build without JSON, json_each (a table-valued function) cannot be read.
        connection = connect(*args, **kwargs)
        connection.set_authorizer(
            lambda action, table, *_: (
                sqlite3.SQLITE_DENY
                if action == sqlite3.SQLITE_READ and table == "json_each"
                else sqlite3.SQLITE_OK
            )
        )
        return connection

    monkeypatch.setattr(sqlite3, "connect", without_json)
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: .*SQLite [\d.]+ lacks JSON;"):
        create_database_file(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")


def test_unwritable_data_folder_is_one_line_naming_the_setting():
    # sysfs refuses new files even to root (as the tests run in CI), like a read-only volume.
    locked = Path("/sys/kernel")
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: .*not writable"):
        prepare_data_dir(locked)
    with pytest.raises(SettingsError, match=r"^DATABASE_URL: cannot create"):
        prepare_data_dir(locked / "data")


async def test_a_connection_given_back_is_rolled_back_only_while_in_a_transaction(
    engine, sessionmaker, request
):
    # The pool's own reset rolled back every connection given back, a trip to aiosqlite's
    # thread after each commit. One given back in a transaction is still rolled back.
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private"))
        await session.commit()
        trips = request.getfixturevalue("trips")
    assert [trip.__name__ for trip in trips] == []  # given back: no rollback
    async with engine.connect() as connection:
        raw = await connection.get_raw_connection()
        # Written past SQLAlchemy, which knows of no transaction to end: the pool's reset must.
        await raw.driver_connection.execute("UPDATE chats SET title = 'renamed'")
    assert [trip.__name__ for trip in trips][-1] == "rollback"
    async with sessionmaker() as session:
        assert (await session.get_one(Chat, 1)).title is None
