"""Which failures are the database being unreachable (bot.storage.outage), judged on the errors
the real drivers raise: an outage is told in one line and tried again, anything else is a bug."""

import os

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.storage.engine import StatementTimeout, create_engine
from bot.storage.outage import unreachable
from tests import real_servers
from tests.e2e_helpers import free_port


async def raised_by(url: str, *statements: str) -> BaseException:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("nothing failed")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://bot@127.0.0.1:{port}/bot",  # nothing listens: refused
        "postgresql+asyncpg://bot@/bot?host=/nonexistent-{port}",  # its unix socket gone
    ],
    ids=["refused", "socket gone"],
)
async def test_a_server_not_there_is_unreachable(url):
    assert unreachable(await raised_by(url.format(port=free_port()), "SELECT 1"))


async def test_a_connection_the_server_ended_is_unreachable(postgres_url):
    # A stopped server ends every connection (57P01), under way or idle in the pool.
    error = await raised_by(postgres_url, "SELECT pg_terminate_backend(pg_backend_pid())")
    assert unreachable(error)
    engine = create_engine(postgres_url)
    async with engine.connect() as idle, engine.connect() as other:
        pid = await idle.scalar(text("SELECT pg_backend_pid()"))
        await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(Exception) as closed:
            await idle.execute(text("SELECT 1"))
    await engine.dispose()
    assert unreachable(closed.value)


async def test_a_server_taking_no_more_connections_is_unreachable(postgres_url):
    # max_connections reached (replicas' pools on a small server): the same refusal as a role
    # at its connection limit, SQLSTATE 53300.
    role = f"capped{os.getpid()}"
    await real_servers.admin(postgres_url, f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
    try:
        error = await raised_by(postgres_url.replace("//postgres@", f"//{role}@"), "SELECT 1")
        assert "too many connections" in str(error) and unreachable(error)
    finally:
        await real_servers.admin(postgres_url, f"DROP ROLE {role}")


async def test_a_statement_refused_or_another_oserror_is_no_outage(postgres_url, tmp_path):
    error = await raised_by(
        postgres_url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1), (1)"
    )
    assert isinstance(error, IntegrityError) and not unreachable(error)
    with pytest.raises(FileNotFoundError) as missing:  # a handler's own file, not the database
        (tmp_path / "absent").read_text()
    assert not unreachable(missing.value)
    # Cut by the engine's bound: the statement ran, maybe halfway (told apart by the caller).
    assert not unreachable(StatementTimeout("a database statement ran past 30 s and was cut"))
