"""Where the bot's work is watched from outside the modules doing it: a Bot API request
middleware, a dispatcher middleware, and wrappers of the SMSC client and the guard. They count
into `Metrics` and keep what /healthz needs, with no hook in the code they watch."""

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
from bot.smsc.client import (
    Balance,
    Credentials,
    SmscApiError,
    SmscError,
    SmscProtocolError,
    SmscUnavailable,
)
from bot.smsc.guard import (
    AuthChecksPaused,
    BalanceFetcher,
    BalanceGuard,
    BalanceResult,
    CredentialsRejected,
    LoginPaused,
    SitePaused,
)
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


class CountingFetcher:
    """The SMSC client, its requests counted by site and result."""

    def __init__(self, client: BalanceFetcher, metrics: Metrics) -> None:
        self._client = client
        self._metrics = metrics

    async def fetch_balance(self, creds: Credentials) -> Balance:
        try:
            balance = await self._client.fetch_balance(creds)
        except SmscError as error:
            if isinstance(error, SmscApiError):
                result = str(error.code)
            elif isinstance(error, SmscUnavailable):
                result = "network"
            else:
                result = "protocol" if isinstance(error, SmscProtocolError) else "other"
            self._metrics.smsc_answered(creds.site, result, str(error))
            raise
        self._metrics.smsc_answered(creds.site, "ok")
        return balance


class ObservedGuard(BalanceGuard):
    """The guard, its decisions counted: fetched (SMSC asked), cache (a recent answer), stale
    (the last known balance while SMSC must wait), paused or rejected (no balance at all)."""

    def __init__(
        self, client: BalanceFetcher, *, metrics: Metrics, cache_seconds: float, **options: Any
    ) -> None:
        super().__init__(client, cache_seconds=cache_seconds, **options)
        self._metrics = metrics
        self._cache_for = cache_seconds

    async def balance(self, creds: Credentials, **options: Any) -> BalanceResult:
        try:
            result = await super().balance(creds, **options)
        except CredentialsRejected:
            self._metrics.guard_decisions.labels("rejected").inc()
            raise
        except (LoginPaused, SitePaused, AuthChecksPaused):
            self._metrics.guard_decisions.labels("paused").inc()
            raise
        except SmscError:
            self._metrics.guard_decisions.labels("fetched").inc()
            raise
        if result.fresh:
            decision = "fetched"
        else:
            # The last known balance is served past the cache's life only while SMSC must wait.
            decision = "cache" if result.age < self._cache_for else "stale"
        self._metrics.guard_decisions.labels(decision).inc()
        return result
