"""SMSC watched from outside the modules doing the work: wrappers of the client and the guard
that count into `Metrics`, with no hook in the code they watch."""

from __future__ import annotations

from typing import Any

from bot.ops.metrics import Metrics
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscApiError, SmscError, SmscProtocolError, SmscUnavailable
from bot.smsc.guard import BalanceFetcher, BalanceGuard, BalanceResult
from bot.smsc.refusals import AuthChecksPaused, CredentialsRejected, LoginPaused, SitePaused


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
