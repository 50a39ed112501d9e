"""The schema the revisions build is the one the models describe, on both databases, and
replicas starting together migrate it once."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.storage.engine import alembic_config, create_engine, migrate
from bot.storage.models import Base
from tests.servers import BOTH_DATABASES


@BOTH_DATABASES
async def test_models_match_the_migrated_schema(engine):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_replicas_starting_together_migrate_once(postgres_url):
    # On PostgreSQL only: an SQLite database serves one process (bot.storage.engine's
    # single_instance, taken before migrating).
    engines = [create_engine(postgres_url) for _ in range(4)]
    try:
        await asyncio.gather(*(migrate(engine) for engine in engines))
        async with engines[0].connect() as connection:
            version = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
            head = ScriptDirectory.from_config(alembic_config()).get_current_head()
            assert version.scalars().all() == [head]
            tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
        assert {"chats", "accounts", "notifications", "daily_runs"} <= set(tables)
    finally:
        for engine in engines:
            await engine.dispose()
