"""The bot's HTTP server (/healthz, /metrics) in the test's own event loop, a database that
never answers, as a PostgreSQL whose host froze, and a health with nothing else to report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace

from aiohttp.test_utils import TestClient, TestServer

from bot.observability import ObservabilitySettings
from bot.ops.health import Health
from bot.ops.metrics import Metrics
from bot.telegram.observe import TelegramWatch
from bot.web import create_app
from tests.alerting_fixtures import START, Clock

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


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def healthy_but(sessionmaker, redis=None) -> Health:
    """A health whose only possible problems are the database's and Redis'."""
    return Health(
        ObservabilitySettings(),
        sessionmaker=sessionmaker,
        telegram=TelegramWatch(Metrics(), clock=Ticks()),
        scheduler=SimpleNamespace(running=True),
        checks=SimpleNamespace(last_dispatch_at=START, last_completed_at=START),
        redis=redis,
        now=Clock(),
    )
