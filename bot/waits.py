"""Waiting at start for what the bot needs (Redis, the database, Telegram): a server up before
its network, or one restarting beside the bot, is waited for with back-off, one line an
attempt; one that answers and refuses ends the start in one line (bot.runner)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import logs
from bot.config import SettingsError
from bot.telegram.commands import set_commands

log = logging.getLogger(__name__)

# Waiting for Telegram or the database at start, and polling after an outage: 1, 2, 4 ... 30 s,
# jittered.
TELEGRAM_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=2.0, jitter=0.2)
# One start-up attempt (getMe and the command menus) may take this long before it counts as
# failed: a Telegram that accepts connections and never answers must not stall the start.
STARTUP_ATTEMPT_TIMEOUT = 15.0


async def wait_for_telegram(bot: Bot, i18n: I18n, then: Callable[[], Awaitable[object]]) -> None:
    """Until Telegram answers getMe, takes the command menus and `then` (deleteWebhook or
    setWebhook). A refused token is not retried: its error ends the wait (bot.runner.Runner)."""

    async def attempt() -> None:
        await bot.me()
        await set_commands(bot, i18n)
        await then()

    await until_answered("Telegram", attempt, (TelegramNetworkError, TelegramServerError))


async def wait_for_database(engine: AsyncEngine) -> None:
    """Until the database server takes a connection (a server starting beside the bot, a
    network blip). A server that answers and refuses (a wrong password, no such database)
    ends the start in one line."""

    async def attempt() -> None:
        async with engine.connect():
            pass

    try:
        await until_answered("database", attempt, (OSError,))
    except Exception as error:
        while error.__cause__ is not None:  # the driver's own, under SQLAlchemy's wrappers
            error = error.__cause__
        first = logs.mask(str(error)).splitlines()[:1]
        raise SettingsError(
            f"DATABASE_URL: the database refused the bot: {type(error).__name__}: " + "".join(first)
        ) from None


async def until_answered(
    what: str, attempt: Callable[[], Awaitable[object]], transient: tuple[type[Exception], ...]
) -> None:
    """Run `attempt` until it succeeds: each failure with a `transient` error, or past
    STARTUP_ATTEMPT_TIMEOUT, is one line and a capped, jittered back-off (Telegram's flood
    control is waited out as it says). Any other error ends the wait."""
    backoff = Backoff(TELEGRAM_BACKOFF)
    for number in itertools.count(1):
        try:
            async with asyncio.timeout(STARTUP_ATTEMPT_TIMEOUT):
                await attempt()
        except TelegramRetryAfter as error:
            delay = float(error.retry_after)
            reason = f"too many requests, retry after {error.retry_after} s"
        except (*transient, TimeoutError) as error:
            delay = next(backoff)
            reason = _describe(error)
        else:
            if number > 1:
                log.info("%s answers attempt=%d", what, number)
            return
        log.warning(
            "%s not answering attempt=%d error=%s; retrying in %.1f s", what, number, reason, delay
        )
        await asyncio.sleep(delay)


def _describe(error: Exception) -> str:
    if isinstance(error, TimeoutError):
        return f"no answer within {STARTUP_ATTEMPT_TIMEOUT:.0f} s"
    return f"{type(error).__name__}: {error}"
