"""The schema the revisions build is the one the models describe, on both databases; an older
schema is brought to it, replicas starting together migrate it once, and a start that finds it
current leaves Alembic unloaded."""

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import delete, inspect, select, text

from bot.storage import sqlite
from bot.storage.engine import (
    SCHEMA_REVISION,
    MigrationError,
    alembic_config,
    create_engine,
    create_sessionmaker,
    migrate,
    migrate_apart,
)
from bot.storage.models import BalanceSample, Base, Chat, Notification
from tests.alerting_fixtures import START, stored_account
from tests.servers import BOTH_DATABASES


def differences(connection):
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def revisions(engine):
    async with engine.connect() as connection:
        found = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
        return found.scalars().all()


@BOTH_DATABASES
async def test_models_match_the_migrated_schema(engine):
    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


def test_the_revision_the_code_expects_is_the_newest():
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head == SCHEMA_REVISION, "a new revision: move bot.storage.engine.SCHEMA_REVISION"


def upgrade_to_previous(connection):
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head-1")


def downgrade_to(revision):
    def run(connection):
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    return run


async def rows(engine):
    async with engine.connect() as connection:
        tables = ("chats", "accounts", "balance_samples", "notifications")
        return {t: await connection.scalar(text(f"SELECT count(*) FROM {t}")) for t in tables}


@BOTH_DATABASES
async def test_down_and_up_through_rebuilt_tables_every_row_and_reference_stays(engine):
    # SQLite changes a table by copying it and dropping the old one: with foreign keys on,
    # dropping `chats` (the downgrades of 0009 and 0006) deleted every account, sample and
    # notification, and 0008 copies `accounts` on the way up.
    sessions = create_sessionmaker(engine)
    async with sessions() as session:
        session.add(Chat(id=-100, type="supergroup", digest_time="09:00", digest_thread_id=7))
        session.add(stored_account(-100, id=7))
        await session.flush()  # samples and the outbox have no relationship to order them by
        session.add_all(
            BalanceSample(account_id=7, taken_at=START, balance=100, credit=0) for _ in range(5)
        )
        session.add(Notification(chat_id=-100, account_id=7, kind="low", text="low"))
        await session.commit()
    kept = {"chats": 1, "accounts": 1, "balance_samples": 5, "notifications": 1}
    async with engine.begin() as connection:
        await connection.run_sync(downgrade_to("0005"))
    assert await rows(engine) == kept
    await migrate(engine)
    assert await rows(engine) == kept
    async with sessions() as session:
        # The digest kept, its topic not: a chat from before 0009 has its digest in General.
        chat = await session.get(Chat, -100)
        assert (chat.digest_time, chat.digest_thread_id) == ("09:00", None)
        assert await session.scalar(select(Notification.account_id)) == 7
        assert set(await session.scalars(select(BalanceSample.account_id))) == {7}
        # Foreign keys are on again: a chat's accounts, samples and alerts go with it.
        await session.execute(delete(Chat))
        await session.commit()
    assert await rows(engine) == dict.fromkeys(kept, 0)


async def test_a_migration_losing_references_fails_and_leaves_the_schema_as_it_was(
    tmp_path, monkeypatch
):
    # On SQLite the revisions run with foreign keys off, so nothing checks them meanwhile. A
    # row broken before (by hand) does not stop them; one they broke does, and all of them.
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to_previous)
        with sqlite3.connect(tmp_path / "bot.db") as database:  # foreign keys off by default
            database.execute(
                "INSERT INTO balance_samples (account_id, taken_at, balance, credit) "
                "VALUES (404, '2026-03-01 09:00:00.000000', '1', '0')"
            )
        found = iter([[], ["balance_samples -> accounts (1)"]])  # none before, one after
        monkeypatch.setattr(sqlite, "broken_references", lambda connection: next(found))
        with pytest.raises(MigrationError, match=r"balance_samples -> accounts \(1\)"):
            await migrate(engine)
        assert await revisions(engine) != [SCHEMA_REVISION]
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert not [table for table in tables if table.startswith("_alembic")]
        monkeypatch.undo()
        await migrate(engine)  # the orphan was there before: the database is brought up
        assert await revisions(engine) == [SCHEMA_REVISION]
    finally:
        await engine.dispose()


@BOTH_DATABASES
async def test_a_database_of_the_previous_version_is_migrated_at_start(database_url):
    engine = create_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to_previous)
        assert await revisions(engine) != [SCHEMA_REVISION]
        await migrate(engine)
        assert await revisions(engine) == [SCHEMA_REVISION]
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


def test_a_start_on_a_current_database_does_not_load_alembic(engine, database_url):
    # Alembic stays resident once imported (≈ 11 MB): only a migration may bring it in.
    assert _alembic_loaded_by("migrate", database_url) == "[]"


def test_migrate_command_says_what_it_upgraded_and_nothing_else(tmp_path):
    # A first install: the folder not there yet, and a umask that lets all read.
    url = f"sqlite+aiosqlite:///{tmp_path}/data/bot.db"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o022,
    )
    assert done.returncode == 0, done.stderr
    # Made as the bot's start makes them: its logins and balances are the owner's alone.
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "data" / "bot.db").stat().st_mode & 0o777 == 0o600
    upgrades = [line for line in done.stderr.splitlines() if "Running upgrade" in line]
    assert upgrades[0].endswith("Running upgrade  -> 0001, chats, accounts and balance samples")
    assert upgrades[-1].split(" -> ")[1].startswith(SCHEMA_REVISION)
    # Alembic's word on each plugin it sets up (1.17 on) would be seven lines of every start.
    assert "plugin" not in done.stderr


def test_alembic_run_in_the_checkout_migrates_and_commits(tmp_path):
    # Its own engine (migrations/env.py), not the bot's: its transaction is committed too.
    ini = Path(__file__).parent.parent / "alembic.ini"
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(tmp_path / "bot.db") as database:
        assert database.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (SCHEMA_REVISION,)
        ]


def test_alembic_refuses_a_malformed_url_without_quoting_it(tmp_path):
    ini = Path(__file__).parent.parent / "alembic.ini"
    done = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        env={**os.environ, "DATABASE_URL": "postgresql+asyncpg://bot:Pa55word/bot"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: DATABASE_URL is invalid: not a database URL")
    assert "Pa55" not in done.stdout + done.stderr


def _alembic_loaded_by(function: str, database_url: str) -> str:
    """The Alembic and Mako modules a fresh interpreter holds after running
    bot.storage.engine's `function` on the database."""
    started = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            f"from bot.storage.engine import create_engine, {function}\n"
            f"asyncio.run({function}(create_engine({database_url!r})))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return started.stdout.strip()


async def test_replicas_starting_together_migrate_once(postgres_url):
    # On PostgreSQL only: an SQLite database serves one process (bot.storage.instance's
    # single_instance, taken before migrating).
    engines = [create_engine(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        assert await revisions(engines[0]) == [SCHEMA_REVISION]
        async with engines[0].connect() as connection:
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert {"chats", "accounts", "notifications", "daily_runs"} <= set(tables)
    finally:
        for engine in engines:
            await engine.dispose()


@BOTH_DATABASES
def test_the_bot_migrates_in_a_child_process_and_never_loads_alembic(database_url):
    # The serving process (bot.runner) migrates with migrate_apart: Alembic runs in a child.
    async def previous_version():
        engine = create_engine(database_url)
        async with engine.begin() as connection:
            await connection.run_sync(upgrade_to_previous)
        await engine.dispose()

    asyncio.run(previous_version())
    assert _alembic_loaded_by("migrate_apart", database_url) == "[]"

    async def migrated():
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                return await revisions(engine), await connection.run_sync(differences)
        finally:
            await engine.dispose()

    assert asyncio.run(migrated()) == ([SCHEMA_REVISION], [])


async def test_a_failed_migration_in_the_child_says_why(engine):
    # A database from a newer version of the bot: no revision here leads from there.
    async with engine.begin() as connection:
        await connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(MigrationError, match="9999") as raised:
        await migrate_apart(engine)
    assert "\n" not in str(raised.value) and "Traceback" not in str(raised.value)
