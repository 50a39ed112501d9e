"""The one gate every balance request goes through, so the bot never trips SMSC's limits.

SMSC answers error 9 past ten balance requests a minute per login (or too many at once), and
blocks the bot's IP for 30 minutes after five authorisation errors in 30 minutes (error 4),
which would stop monitoring for every chat. `BalanceGuard` keeps well inside both limits:
per login it spaces requests and sends one at a time, it never resends credentials SMSC has
refused, and it stops checking never-verified credentials at a site that refused several.
So that no single person can spend that allowance for everyone, a caller may say who is
asking (any keys, say ``("user:5", "chat:-100")``): each asker gets at most one rejected
check of never-verified credentials per site and window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.smsc.client import (
    Balance,
    Credentials,
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
)
from bot.smsc.windows import LoginLimits, SiteLimits

log = logging.getLogger(__name__)

# SMSC refuses the eleventh balance request within a minute.
SMSC_MAX_PER_MINUTE = 10
MINUTE = 60.0


class BalanceFetcher(Protocol):
    """What the guard needs of `bot.smsc.client.SmscClient` (tests pass fakes)."""

    async def fetch_balance(self, creds: Credentials) -> Balance: ...


@dataclass(frozen=True)
class BalanceResult:
    balance: Balance
    checked_at: datetime  # UTC wall time when SMSC answered
    age: float  # seconds since then, when this result was returned
    fresh: bool  # a request was made for this call, or it joined one in flight

    @property
    def stale(self) -> bool:
        """Served from the cache or the last known balance, not from a request for this call."""
        return not self.fresh


class CredentialsRejected(SmscAuthError):
    """SMSC refused these exact credentials before; none is sent again until they change."""

    def __init__(self) -> None:
        super().__init__(
            2, "rejected before", "SMSC rejected these credentials; not retried until they change"
        )


class AuthChecksPaused(SmscError):
    """Too many authorisation errors at this site lately; never-verified credentials must wait.

    Checking them could be the error that gets the bot's IP blocked. `until` is the UTC time
    they may be checked again.
    """

    reason = "too many rejected credentials at this SMSC site lately"

    def __init__(self, retry_after: float, until: datetime) -> None:
        super().__init__(
            f"{self.reason}; new credentials can be checked in {math.ceil(retry_after)} s"
        )
        self.retry_after = retry_after
        self.until = until


class AskerPaused(AuthChecksPaused):
    """The one asking already had never-verified credentials rejected at this site lately."""

    reason = "credentials of this asker were rejected at this SMSC site lately"


class SitePaused(SmscIpBlocked):
    """The site answered error 4 (IP blocked) recently; no request goes there for a while."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            4,
            "ip blocked earlier",
            f"SMSC blocked the bot's IP; requests paused for {math.ceil(retry_after)} s",
        )
        self.retry_after = retry_after


class LoginPaused(SmscRateLimited):
    """The login's requests for this minute are used up, or SMSC answered error 9 lately.

    Raised only when there is no last known balance to serve instead.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(
            9,
            "rate limited",
            f"balance requests for this login paused for {math.ceil(retry_after)} s",
        )
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Known:
    balance: Balance
    checked_at: datetime
    at: float  # `clock` time of the answer

    def result(self, now: float) -> BalanceResult:
        return BalanceResult(self.balance, self.checked_at, age=now - self.at, fresh=False)


class BalanceGuard:
    """Serves balances from a fetcher (the SMSC client) within SMSC's limits; see `balance`."""

    def __init__(
        self,
        client: BalanceFetcher,
        *,
        max_per_minute: int = SMSC_MAX_PER_MINUTE,
        cache_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rate_limit_pause: float = 60.0,
        ip_block_pause: float = 900.0,
        auth_failures_per_site: int = 3,
        auth_failures_per_asker: int = 1,
        auth_window: float = 1800.0,
    ) -> None:
        if not 1 <= max_per_minute <= SMSC_MAX_PER_MINUTE:
            raise ValueError(f"max_per_minute must be 1..{SMSC_MAX_PER_MINUTE} (SMSC's limit)")
        self._client = client
        self._max_per_minute = max_per_minute
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._now = now
        self._rate_limit_pause = rate_limit_pause
        self._ip_block_pause = ip_block_pause
        self._auth_failures_per_site = auth_failures_per_site
        self._auth_failures_per_asker = auth_failures_per_asker
        self._auth_window = auth_window
        self._logins: dict[str, LoginLimits] = {}
        self._sites: dict[str, SiteLimits] = {}
        self._known: dict[str, _Known] = {}  # fingerprint -> last balance
        self._verified: set[str] = set()  # fingerprints SMSC accepted
        self._rejected: set[str] = set()  # fingerprints SMSC answered error 2 to
        self._in_flight: dict[str, asyncio.Task[BalanceResult]] = {}  # by fingerprint

    async def balance(
        self, creds: Credentials, *, known_good: bool = False, askers: tuple[str, ...] = ()
    ) -> BalanceResult:
        """The balance for `creds`: cached, fetched, or the last known one when SMSC must wait.

        `known_good`: SMSC accepted these credentials before (say, before a restart), so they
        need not wait behind never-verified ones. `askers`: who asks (keys of the caller's
        choosing); never-verified credentials are refused with `AskerPaused` while any of
        them had such credentials rejected within the window. Raises the client's
        `SmscError`s, or one of this module's refusals when no request may be made and no
        balance is known.
        """
        fingerprint = creds.fingerprint
        if known_good and fingerprint not in self._rejected:
            self._verified.add(fingerprint)
        if fingerprint in self._rejected:
            raise CredentialsRejected
        known = self._known.get(fingerprint)
        if known is not None and self._clock() - known.at < self._cache_seconds:
            return known.result(self._clock())
        task = self._in_flight.get(fingerprint)
        if task is None:
            # A task of its own, so callers that give up (are cancelled) don't fail the others.
            task = asyncio.create_task(self._check(creds, askers))
            # Should every caller give up (a shutdown cancels them), the request's failure is
            # nobody's news: taken here, asyncio does not report it as never retrieved.
            task.add_done_callback(_take_outcome)
            self._in_flight[fingerprint] = task
        return await asyncio.shield(task)

    def retry(self, creds: Credentials) -> None:
        """Let refused credentials be tried once more because a person asked to (the account's
        IP allow-list may have been fixed); the cap on failures per site still holds."""
        self._rejected.discard(creds.fingerprint)

    async def _check(self, creds: Credentials, askers: tuple[str, ...]) -> BalanceResult:
        try:
            login = self._logins.get(creds.rate_key)
            if login is None:
                login = self._logins[creds.rate_key] = LoginLimits(MINUTE)
            site = self._sites.get(creds.site)
            if site is None:
                site = self._sites[creds.site] = SiteLimits(self._auth_window)
            async with login.lock:  # one request in flight per login
                if creds.fingerprint in self._verified:
                    return await self._check_locked(creds, login, site, askers)
                # New credentials one at a time per site: checked side by side, several could
                # fail together and overshoot the site's (or an asker's) allowance of errors.
                async with site.new_credentials_lock:
                    return await self._check_locked(creds, login, site, askers)
        finally:
            del self._in_flight[creds.fingerprint]

    async def _check_locked(
        self, creds: Credentials, login: LoginLimits, site: SiteLimits, askers: tuple[str, ...]
    ) -> BalanceResult:
        # Other credentials of this login or site may have changed things while we waited.
        fingerprint = creds.fingerprint
        now = self._clock()
        if site.paused_until > now:
            return self._last_known(fingerprint, now, SitePaused(site.paused_until - now))
        if fingerprint not in self._verified:
            self._check_auth_allowance(creds.site, site, askers, now)
        wait = max(login.paused_until - now, login.window.wait(now, self._max_per_minute))
        if wait > 0:
            return self._last_known(fingerprint, now, LoginPaused(wait))

        try:
            balance = await self._client.fetch_balance(creds)
        except SmscAuthError:
            self._rejected.add(fingerprint)
            self._verified.discard(fingerprint)
            self._known.pop(fingerprint, None)
            site.add_auth_failure(askers, self._clock())
            log.warning(
                "SMSC %s rejected credentials for %s asked by %s",
                creds.site,
                creds.rate_key,
                ", ".join(askers) or "the bot",
            )
            raise
        except SmscIpBlocked:
            site.paused_until = self._clock() + self._ip_block_pause
            log.warning("SMSC %s blocked the bot's IP; pausing the site", creds.site)
            raise
        except SmscRateLimited:
            login.paused_until = self._clock() + self._rate_limit_pause
            log.warning("SMSC rate-limited %s; pausing that login", creds.rate_key)
            raise
        finally:
            # Counted from the answer, not the sending: SMSC saw the request somewhere in
            # between, so no 60 s of SMSC's can then hold more than max_per_minute of ours.
            login.window.add(self._clock())

        self._verified.add(fingerprint)
        known = _Known(balance, self._now(), self._clock())
        self._known[fingerprint] = known
        return BalanceResult(balance, known.checked_at, age=0.0, fresh=True)

    def _check_auth_allowance(
        self, site_url: str, site: SiteLimits, askers: tuple[str, ...], now: float
    ) -> None:
        """Refuse to check never-verified credentials when the askers' or the site's allowance
        of authorisation errors is spent (the askers' first: that refusal is theirs alone)."""
        wait = site.asker_wait(askers, now, self._auth_failures_per_asker)
        if wait > 0:
            refusal: AuthChecksPaused = AskerPaused(wait, self._until(wait))
        else:
            wait = site.auth_failures.wait(now, self._auth_failures_per_site)
            if wait <= 0:
                return
            refusal = AuthChecksPaused(wait, self._until(wait))
        log.warning(
            "new credentials at %s not checked for %s: %s",
            site_url,
            ", ".join(askers) or "the bot",
            refusal,
        )
        raise refusal

    def _until(self, wait: float) -> datetime:
        return self._now() + timedelta(seconds=wait)

    def _last_known(self, fingerprint: str, now: float, refusal: SmscError) -> BalanceResult:
        known = self._known.get(fingerprint)
        if known is None:
            raise refusal
        return known.result(now)


def _take_outcome(task: asyncio.Task[BalanceResult]) -> None:
    if not task.cancelled():
        task.exception()
