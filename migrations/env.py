"""Alembic environment: async engine, URL from the app's settings unless a connection is given."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from bot.config import SettingsError, load_settings
from bot.config.sections import DatabaseSettings
from bot.storage import sqlite
from bot.storage.engine import MigrationError, create_engine
from bot.storage.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    # One line naming the bad setting, as the bot says it: pydantic's own error quotes the URL,
    # password and all.
    try:
        return load_settings(DatabaseSettings).database_url
    except SettingsError as error:
        raise SystemExit(f"error: {error}") from None


def run_migrations_offline() -> None:
    context.configure(url=database_url(), target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    on_sqlite = connection.dialect.name == "sqlite"
    if on_sqlite:  # batch mode copies tables, which must not cascade
        sqlite.begin_migrations(connection)
    # Batch mode: SQLite can only ALTER tables by copying them. The revisions run in the caller's
    # transaction (run_async_migrations' own too), all or none.
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        # Rows broken before (say, by hand) are not the revisions' doing: they do not stop it.
        before = sqlite.broken_references(connection) if on_sqlite else []
        context.run_migrations()
        # Nothing checked them meanwhile: a revision that lost a referenced row fails here.
        if on_sqlite and (broken := sqlite.broken_references(connection)) != before:
            raise MigrationError(
                f"rows refer to rows not there after the migration: {', '.join(broken)}"
            )


async def run_async_migrations() -> None:
    engine = create_engine(database_url())
    async with engine.begin() as connection:
        await connection.run_sync(do_run_migrations)
    await engine.dispose()


connection = config.attributes.get("connection")
if context.is_offline_mode():
    run_migrations_offline()
elif connection is None:
    asyncio.run(run_async_migrations())
else:
    do_run_migrations(connection)
