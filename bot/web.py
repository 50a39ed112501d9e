"""The bot's small HTTP server (/healthz, /metrics, and in webhook mode the webhook: see
bot.webhook) and its heartbeat, both optional: the server runs when HTTP_PORT is set, the
heartbeat when HEARTBEAT_URL is."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from aiogram import Bot, Dispatcher
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import SettingsError
from bot.observability import ObservabilitySettings
from bot.ops.health import Health
from bot.ops.heartbeat import Heartbeat
from bot.ops.metrics import Metrics
from bot.telegram.observe import TelegramWatch, UpdateTimer, WebhookWatch

log = logging.getLogger(__name__)

# A route of the server besides /healthz and /metrics: (path, handler of POST requests).
Route = tuple[str, Callable[[web.Request], Awaitable[web.StreamResponse]]]
# At a stop, requests under way (webhook updates being handled) get this long, then are cut:
# Telegram redelivers an update it got no answer for.
SHUTDOWN_TIMEOUT = 0.3


def instrument(
    dp: Dispatcher, bot: Bot, metrics: Metrics, webhook: WebhookWatch | None = None
) -> Health:
    """Count the Bot API's failures and the handling of updates into `metrics`, and give
    /status what it shows; returns the health the server and the heartbeat report."""
    telegram = TelegramWatch(metrics, webhook=webhook is not None)
    bot.session.middleware(telegram)
    dp.update.outer_middleware(UpdateTimer(metrics))
    health = Health(
        dp["settings"],
        sessionmaker=dp["sessionmaker"],
        telegram=telegram,
        scheduler=dp["scheduler"],
        checks=dp["checks"],
        webhook=webhook,
        redis=dp.get("redis"),
    )
    dp["metrics"], dp["health"] = metrics, health
    return health


def create_app(
    health: Health,
    metrics: Metrics,
    sessionmaker: async_sessionmaker[AsyncSession],
    webhook: Route | None = None,
) -> web.Application:
    async def healthz(_request: web.Request) -> web.Response:
        problems = await health.problems()
        if problems:
            return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
        return web.json_response({"status": "ok"})

    async def prometheus(_request: web.Request) -> web.Response:
        body = await metrics.render(sessionmaker)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", prometheus)
    if webhook is not None:
        app.router.add_post(*webhook)
    return app


@contextlib.asynccontextmanager
async def watched(
    settings: ObservabilitySettings,
    health: Health,
    metrics: Metrics,
    sessionmaker: async_sessionmaker[AsyncSession],
    webhook: Route | None = None,
) -> AsyncIterator[None]:
    """Serve /healthz, /metrics and the webhook and beat the heartbeat, as configured, while
    inside."""
    runner = None
    if settings.http_port is not None:
        app = create_app(health, metrics, sessionmaker, webhook)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        except OSError as error:
            await runner.cleanup()
            # A name that resolves to nothing, or an address this machine does not have.
            bad_host = isinstance(error, socket.gaierror) or error.errno == errno.EADDRNOTAVAIL
            where = f"{settings.http_host}:{settings.http_port}"
            raise SettingsError(
                f"{'HTTP_HOST' if bad_host else 'HTTP_PORT'} is invalid: cannot listen on "
                f"{where} ({error.strerror})"
            ) from None
        log.info("http listening host=%s port=%s", settings.http_host, settings.http_port)
    beating = None
    if settings.heartbeat_url is not None:
        heartbeat = Heartbeat(str(settings.heartbeat_url), settings.heartbeat_seconds, health)
        beating = asyncio.create_task(heartbeat.run(), name="heartbeat")
    try:
        yield
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        if runner is not None:
            await runner.cleanup()
