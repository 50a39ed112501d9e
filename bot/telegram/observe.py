"""Telegram watched from outside the modules doing the work: a Bot API request middleware and
a dispatcher middleware. They count into `Metrics` and keep what /healthz needs, with no hook
in the code they watch (SMSC's side: bot.ops.smsc_watch)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramConflictError,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import GetUpdates, Response, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject

from bot.ops.metrics import Metrics
from bot.telegram.middlewares import Handler

# aiogram keeps the class of a Bot API error, not its status: the class stands for the code.
_ERROR_CODES: list[tuple[type[Exception], str]] = [
    (TelegramRetryAfter, "429"),
    (TelegramMigrateToChat, "400"),
    (TelegramBadRequest, "400"),
    (TelegramUnauthorizedError, "401"),
    (TelegramForbiddenError, "403"),
    (TelegramNotFound, "404"),
    (TelegramConflictError, "409"),
    (TelegramEntityTooLarge, "413"),
    (TelegramServerError, "5xx"),
    (TelegramNetworkError, "network"),
]


def telegram_error_code(error: Exception) -> str:
    return next((code for cls, code in _ERROR_CODES if isinstance(error, cls)), "other")


class TelegramWatch(BaseRequestMiddleware):
    """Counts failed Bot API calls and tells how long polling has gone unanswered."""

    def __init__(self, metrics: Metrics, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._metrics = metrics
        self._clock = clock
        self._answered_at = clock()  # the start counts as an answer: no alarm before polling
        self._last_poll_ok = True
        self._poll_started: float | None = None
        self._poll_timeout = 0.0

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        polling = isinstance(method, GetUpdates)
        if polling:
            self._poll_started, self._poll_timeout = self._clock(), float(method.timeout or 0)
        try:
            response = await make_request(bot, method)
        except TelegramAPIError as error:
            code = telegram_error_code(error)
            self._metrics.telegram_failed(type(method).__name__, code, error.message)
            if polling:
                self._last_poll_ok = False
            raise
        finally:
            if polling:
                self._poll_started = None
        if polling:
            self._answered_at, self._last_poll_ok = self._clock(), True
        return response

    def silence(self) -> float:
        """Seconds the Bot API has owed an answer to getUpdates. A long poll is owed one only
        after its timeout; one that follows a failure proves nothing until it returns."""
        now = self._clock()
        silent = now - self._answered_at
        if self._poll_started is not None and self._last_poll_ok:
            silent = min(silent, max(0.0, now - self._poll_started - self._poll_timeout))
        return silent


class UpdateTimer(BaseMiddleware):
    """Times the handling of each update (a dispatcher outer middleware)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        with self._metrics.update_seconds.time():
            return await handler(event, data)
