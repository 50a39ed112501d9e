"""The bot's HTTP server (/healthz, /metrics) in the test's own event loop, and a database that
never answers, as a PostgreSQL whose host froze."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer

from bot.web import create_app

# Far over the bound the handlers keep to in these tests (bot.ops.health.ANSWER_TIMEOUT,
# lowered), far under a hang.
ANSWER_WITHIN = 1.0


class Frozen:
    """A session whose first read waits for ever; pass the class as the sessionmaker."""

    async def __aenter__(self) -> Frozen:
        await asyncio.Event().wait()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        pass


@contextlib.asynccontextmanager
async def served(
    health, metrics, sessionmaker
) -> AsyncIterator[Callable[[str], Awaitable[tuple[int, bytes]]]]:
    """A GET of the server: (status, body), answered within ANSWER_WITHIN or failed."""
    async with TestClient(TestServer(create_app(health, metrics, sessionmaker))) as client:

        async def get(path: str) -> tuple[int, bytes]:
            async with asyncio.timeout(ANSWER_WITHIN):
                answer = await client.get(path)
                return answer.status, await answer.read()

        yield get
