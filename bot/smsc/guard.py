"""The one gate every balance request goes through, so the bot never trips SMSC's limits.

SMSC answers error 9 past ten balance requests a minute per login (or too many at once), and
blocks the bot's IP for 30 minutes after five authorisation errors in 30 minutes (error 4),
which would stop monitoring for every chat. `BalanceGuard` keeps well inside both limits:
per login it spaces requests and sends one at a time, it never resends credentials SMSC has
refused, and it stops checking never-verified credentials at a site that refused several.
Known good credentials fail too (the bot's IP changed, an allow-list was switched on): after
`auth_failures_cap` refusals of any credentials in 30 minutes the whole site waits, and until
a request there is answered OK, requests in flight count as refusals (state.PROOF_SPAN). So that
no single person can spend the allowance for everyone, a caller may say who is asking (any
keys, say ``("user:5", "chat:-100")``): each asker gets at most one rejected check of
never-verified credentials per site and window.

What the guard remembers lives in a `GuardState` (see bot.smsc.state): in this process by
default, or shared by every replica of the bot, so that the limits hold for the fleet. When
that state cannot be reached the guard sends nothing (`GuardUnavailable`): an unguarded request
could be the one that gets a login paused or the IP blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.refusals import (
    AskerPaused,
    AuthChecksPaused,
    CredentialsRejected,
    GuardUnavailable,
    LoginPaused,
    SiteAuthCapped,
    SitePaused,
)
from bot.smsc.state import (
    Admission,
    Allowance,
    GuardState,
    GuardStateUnavailable,
    Known,
    Standing,
    Turn,
)
from bot.smsc.windows import MemoryGuardState

log = logging.getLogger(__name__)

# SMSC refuses the eleventh balance request within a minute.
SMSC_MAX_PER_MINUTE = 10
# SMSC blocks the IP at the fifth authorisation error within 30 minutes, for 30 minutes.
SMSC_AUTH_FAILURES = 5
SMSC_IP_BLOCK = 1800.0
# When the shared state is unreachable, callers are told to come back after this long.
STATE_RETRY_AFTER = 5.0
# A request's whole time, backup hosts included (`SmscClient`: 10 s a host, the backup asked
# only after its site could not be connected to within 5 s: 15 s at most), with room: a
# shared state lets the login's turn go about this long after (its holder may die).
REQUEST_TIMEOUT = 30.0


class BalanceFetcher(Protocol):
    """What the guard needs of `bot.smsc.client.SmscClient` (tests pass fakes)."""

    async def fetch_balance(self, creds: Credentials) -> Balance: ...


@dataclass(frozen=True, slots=True)
class BalanceResult:
    balance: Balance
    checked_at: datetime  # UTC wall time when SMSC answered
    age: float  # seconds since then, when this result was returned
    fresh: bool  # a request was made for this call, or it joined one in flight

    @property
    def stale(self) -> bool:
        """Served from the cache or the last known balance, not from a request for this call."""
        return not self.fresh


class BalanceGuard:
    """Serves balances from a fetcher (the SMSC client) within SMSC's limits; see `balance`.

    `state`: where the limits are kept; None keeps them in this process (`MemoryGuardState`).
    `request_timeout`: with a state that lets turns go by themselves (a shared one), a request
    to SMSC taking longer is given up (`SmscUnavailable`), so that it never outlasts its turn.
    """

    def __init__(
        self,
        client: BalanceFetcher,
        *,
        max_per_minute: int = SMSC_MAX_PER_MINUTE,
        cache_seconds: float = 30.0,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        rate_limit_pause: float = 60.0,
        # A minute past SMSC's block: clocks and SMSC's count of it need not agree to the second.
        ip_block_pause: float = SMSC_IP_BLOCK + 60,
        auth_failures_per_site: int = 3,
        auth_failures_per_asker: int = 1,
        auth_failures_cap: int = SMSC_AUTH_FAILURES - 1,
        state: GuardState | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        if not 1 <= max_per_minute <= SMSC_MAX_PER_MINUTE:
            raise ValueError(f"max_per_minute must be 1..{SMSC_MAX_PER_MINUTE} (SMSC's limit)")
        if not 1 <= auth_failures_cap < SMSC_AUTH_FAILURES:
            raise ValueError(f"auth_failures_cap must be under {SMSC_AUTH_FAILURES} (SMSC's limit)")
        self._client = client
        self._limits = Allowance(
            max_per_minute, auth_failures_per_site, auth_failures_per_asker, auth_failures_cap
        )
        self._cache_seconds = cache_seconds
        self._now = now
        self._rate_limit_pause = rate_limit_pause
        self._ip_block_pause = ip_block_pause
        self._state: GuardState = MemoryGuardState() if state is None else state
        self._request_timeout = request_timeout
        self._retries: set[str] = set()  # fingerprints `retry` was asked for
        self._in_flight: dict[str, asyncio.Task[BalanceResult]] = {}  # by fingerprint
        self._keyed: dict[str, Credentials] = {}  # by the callers' keys, see `remembered`
        self._state_down = False  # its last call failed: see `_unavailable`

    def remembered(self, key: str | None, credentials: Callable[[], Credentials]) -> Credentials:
        """The credentials last asked for under `key` (see `balance`), else `credentials()`.
        A caller that keeps credentials encrypted passes their decryption: it runs once per
        key, not for every answer the cache gives (nor is the fingerprint hashed again)."""
        known = None if key is None else self._keyed.get(key)
        return credentials() if known is None else known

    async def balance(
        self,
        creds: Credentials,
        *,
        known_good: bool = False,
        askers: tuple[str, ...] = (),
        key: str | None = None,
        slot: AbstractAsyncContextManager[object] | None = None,
    ) -> BalanceResult:
        """The balance for `creds`: cached, fetched, or the last known one when SMSC must wait.

        `known_good`: SMSC accepted these credentials before (say, before a restart), so they
        need not wait behind never-verified ones; unless SMSC refused them since (`retry` or
        not): then they are never-verified ones until SMSC accepts them. `askers`: who asks
        (keys of the caller's choosing); never-verified credentials are refused with
        `AskerPaused` while any of them had such credentials rejected within the window.
        `key`: the caller's name for exactly these credentials (one key, one set), for
        `remembered`. `slot`: held while SMSC is asked and only then (a caller's bound on its
        requests at once), within the request's time bound: a wait for it counts against that
        bound, so the login's turn is never outlived. Raises the client's `SmscError`s, or one
        of this module's refusals when no request may be made and no balance is known.
        """
        if key is not None:
            self._keyed[key] = creds
        fingerprint = creds.fingerprint
        if fingerprint in self._retries:
            try:
                await self._state.retry(creds)
            except GuardStateUnavailable as error:
                raise self._unavailable(creds, error) from None
            self._state_works()
            self._retries.discard(fingerprint)
        standing = self._state.at_hand(creds, known_good=known_good, fresh_for=self._cache_seconds)
        if standing is not None:
            return _answered_by(standing)
        task = self._in_flight.get(fingerprint)
        if task is None:
            # A task of its own, so callers that give up (are cancelled) don't fail the others.
            task = asyncio.create_task(self._check(creds, known_good, askers, slot))
            # Should every caller give up (a shutdown cancels them), the request's failure is
            # nobody's news: taken here, asyncio does not report it as never retrieved.
            task.add_done_callback(_take_outcome)
            self._in_flight[fingerprint] = task
        return await asyncio.shield(task)

    def retry(self, creds: Credentials) -> None:
        """Let refused credentials be tried once more because a person asked to (the account's
        IP allow-list may have been fixed); the cap on failures per site still holds. Taken
        into account by the next `balance` call for them (the state may be remote)."""
        self._retries.add(creds.fingerprint)

    async def _check(
        self,
        creds: Credentials,
        known_good: bool,
        askers: tuple[str, ...],
        slot: AbstractAsyncContextManager[object] | None,
    ) -> BalanceResult:
        state = self._state
        try:
            try:
                turn = await state.begin(
                    creds,
                    askers,
                    self._limits,
                    known_good=known_good,
                    fresh_for=self._cache_seconds,
                    hold=self._request_timeout,
                )
            except GuardStateUnavailable as error:
                refusal = self._unavailable(creds, error)
                try:
                    return self._last_known(await state.standing(creds, known_good=False), refusal)
                except GuardStateUnavailable:
                    raise refusal from None
            self._state_works()
            if turn.admission is None:
                return _answered_by(turn.standing)
            if not turn.admission.granted:
                return self._refuse(creds, turn.standing, askers, turn.admission)
            return await self._request(creds, turn, askers, slot or contextlib.nullcontext())
        finally:
            del self._in_flight[creds.fingerprint]

    async def _request(
        self,
        creds: Credentials,
        turn: Turn,
        askers: tuple[str, ...],
        slot: AbstractAsyncContextManager[object],
    ) -> BalanceResult:
        answer: tuple[Balance, datetime] | None = None
        try:
            try:
                balance = await self._fetch(creds, turn.bound, slot)
            except SmscAuthError:
                await self._record(self._state.rejected(creds, askers))
                log.warning(
                    "SMSC %s rejected credentials for %s asked by %s",
                    creds.site,
                    creds.rate_key,
                    ", ".join(askers) or "the bot",
                )
                raise
            except SmscIpBlocked:
                await self._record(self._state.pause_site(creds.site, self._ip_block_pause))
                log.warning("SMSC %s blocked the bot's IP; pausing the site", creds.site)
                raise
            except SmscRateLimited:
                await self._record(self._state.pause_login(creds.rate_key, self._rate_limit_pause))
                log.warning("SMSC rate-limited %s; pausing that login", creds.rate_key)
                raise
            checked_at = self._now()
            answer = balance, checked_at
            return BalanceResult(balance, checked_at, age=0.0, fresh=True)
        finally:
            # Counted from the answer, not the sending: SMSC saw the request somewhere in
            # between, so no 60 s of SMSC's can then hold more than max_per_minute of ours.
            await self._record(self._state.finish(creds, turn, answer))

    async def _fetch(
        self, creds: Credentials, bound: float | None, slot: AbstractAsyncContextManager[object]
    ) -> Balance:
        if bound is None:
            async with slot:
                return await self._client.fetch_balance(creds)
        try:
            # The state lets the login's turn go after `bound`: the request must be over, and
            # a wait for the slot counts.
            async with asyncio.timeout(bound), slot:
                return await self._client.fetch_balance(creds)
        except TimeoutError:
            raise SmscUnavailable(f"no answer from SMSC within {bound:g} s") from None

    def _refuse(
        self, creds: Credentials, standing: Standing, askers: tuple[str, ...], wait: Admission
    ) -> BalanceResult:
        """The last known balance, or the refusal the first reason to wait calls for. Spent
        allowances of authorisation errors refuse even with a balance known: they concern
        credentials nobody has seen work (the askers' first, as that refusal is theirs). The
        site's cap serves the last balance, as the pauses do: it holds known good ones too."""
        if wait.site_paused > 0:
            return self._last_known(standing, SitePaused(wait.site_paused))
        if wait.asker_wait > 0 or wait.auth_wait > 0:
            kind, seconds = (AskerPaused, wait.asker_wait)
            if seconds <= 0:
                kind, seconds = (AuthChecksPaused, wait.auth_wait)
            refusal = kind(seconds, self._now() + timedelta(seconds=seconds))
            who = ", ".join(askers) or "the bot"
            log.warning("new credentials at %s not checked for %s: %s", creds.site, who, refusal)
            raise refusal
        if wait.cap_wait > 0:
            until = self._now() + timedelta(seconds=wait.cap_wait)
            return self._last_known(standing, SiteAuthCapped(wait.cap_wait, until))
        return self._last_known(standing, LoginPaused(wait.login_wait))

    async def _record(self, change: Awaitable[None]) -> None:
        """Write down what SMSC answered. Should the state fail now, SMSC's answer still
        stands for this call; the fleet forgets it (while the state is down, every replica
        refuses to send anyway)."""
        try:
            await change
        except GuardStateUnavailable as error:
            self._state_failed("the guard could not record an SMSC answer: %s", error)

    def _unavailable(self, creds: Credentials, error: GuardStateUnavailable) -> GuardUnavailable:
        self._state_failed("guard state unavailable (%s); %s not checked", error, creds.rate_key)
        return GuardUnavailable(STATE_RETRY_AFTER)

    def _state_failed(self, message: str, *args: object) -> None:
        """Said once per outage: every login due meets it, again after each STATE_RETRY_AFTER
        (a sweep of 300 logins in a 20 s Redis outage wrote a thousand lines). The rest are
        for debugging; `_state_works` says when it is over."""
        if self._state_down:
            log.debug(message, *args)
            return
        self._state_down = True
        log.warning(message + "; more such at debug until it works again", *args)

    def _state_works(self) -> None:
        if self._state_down:
            self._state_down = False
            log.info("guard state works again: balance requests go out")

    @staticmethod
    def _last_known(standing: Standing, refusal: SmscError) -> BalanceResult:
        if standing.rejected:
            raise CredentialsRejected
        if standing.known is None:
            raise refusal
        return _served(standing.known)


def _served(known: Known) -> BalanceResult:
    return BalanceResult(known.balance, known.checked_at, age=known.age, fresh=False)


def _answered_by(standing: Standing) -> BalanceResult:
    """The answer of a standing that serves a call: refused credentials, or a recent balance."""
    if standing.rejected or standing.known is None:
        raise CredentialsRejected
    return _served(standing.known)


def _take_outcome(task: asyncio.Task[BalanceResult]) -> None:
    if not task.cancelled():
        task.exception()
