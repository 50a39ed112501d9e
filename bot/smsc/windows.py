"""The guard's state in this process (`MemoryGuardState`, the `GuardState` of one replica,
see bot.smsc.state), kept in sliding windows of recent events."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bot.smsc.client import Balance, Credentials
from bot.smsc.state import (
    AUTH_WINDOW,
    MINUTE,
    PROOF_SPAN,
    Admission,
    Allowance,
    Known,
    Standing,
    Turn,
)

# Should a request find the flight full once admitted after all, it is asked again this soon.
FLIGHT_RETRY = 5.0


class SlidingWindow:
    """Times of recent events; those `span` seconds old drop out."""

    def __init__(self, span: float) -> None:
        self._span = span
        # A list, not a deque: a window holds a few times (a login's at most ten), and an
        # empty deque alone takes ≈ 0.7 KB, 0.7 MB for every 1,000 logins watched.
        self._times: list[float] = []

    def add(self, now: float) -> None:
        self._forget(now)
        self._times.append(now)

    def wait(self, now: float, limit: int) -> float:
        """Seconds until fewer than `limit` events remain in the window; 0 if already so."""
        self._forget(now)
        excess = len(self._times) - limit
        return 0.0 if excess < 0 else self._times[excess] + self._span - now

    def _forget(self, now: float) -> None:
        times, gone = self._times, 0
        while gone < len(times) and now - times[gone] >= self._span:
            gone += 1
        del times[:gone]


class _Login:
    def __init__(self, span: float) -> None:
        self.window = SlidingWindow(span)
        self.paused_until = 0.0
        self.lock = asyncio.Lock()


class _Site:
    def __init__(self, auth_window: float) -> None:
        self.auth_window = auth_window
        self.auth_failures = SlidingWindow(auth_window)
        self.asker_failures: dict[str, SlidingWindow] = {}
        self.paused_until = 0.0
        self.new_credentials_lock = asyncio.Lock()
        self.proven_at = -math.inf  # the last OK answer (PROOF_SPAN)
        self.careful_in_flight = 0  # requests let through while unproven, not yet answered
        self.landed = asyncio.Event()  # set (and replaced) as each of those ends

    def careful(self, now: float) -> bool:
        return now - self.proven_at >= PROOF_SPAN

    def flight_full(self, now: float, cap: int) -> bool:
        """Unproven, under the cap, and as many in flight as the cap leaves room for."""
        flying = self.careful_in_flight
        if not self.careful(now) or not flying or self.auth_failures.wait(now, cap) > 0:
            return False
        return flying >= cap or self.auth_failures.wait(now, cap - flying) > 0

    def cap_wait(self, now: float, cap: int) -> float:
        if self.flight_full(now, cap):
            return FLIGHT_RETRY
        return self.auth_failures.wait(now, cap)

    def asker_wait(self, askers: tuple[str, ...], now: float, limit: int) -> float:
        windows = (self.asker_failures.get(asker) for asker in askers)
        return max(
            (window.wait(now, limit) for window in windows if window is not None), default=0.0
        )

    def add_auth_failure(self, askers: tuple[str, ...], now: float) -> None:
        self.auth_failures.add(now)
        # Askers whose failures aged out are dropped, so strangers leave nothing behind.
        for asker, window in list(self.asker_failures.items()):
            if window.wait(now, 1) == 0:
                del self.asker_failures[asker]
        for asker in askers:
            self.asker_failures.setdefault(asker, SlidingWindow(self.auth_window)).add(now)


@dataclass(frozen=True, slots=True)
class _Balance:
    balance: Balance
    checked_at: datetime
    at: float  # `clock` time of the answer


class MemoryGuardState:
    """The guard's state in this process, timed by `clock` (tests inject one)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        window: float = MINUTE,
        auth_window: float = AUTH_WINDOW,
    ) -> None:
        self._clock = clock
        self._window = window
        self._auth_window = auth_window
        self._logins: dict[str, _Login] = {}
        self._sites: dict[str, _Site] = {}
        self._balances: dict[str, _Balance] = {}  # by fingerprint
        self._verified: set[str] = set()  # fingerprints SMSC accepted
        self._rejected: set[str] = set()  # fingerprints SMSC answered error 2 to
        self._refused: set[str] = set()  # those too, retried or not, until SMSC accepts them

    async def standing(self, creds: Credentials, *, known_good: bool) -> Standing:
        return self._standing(creds, known_good)

    def at_hand(self, creds: Credentials, *, known_good: bool, fresh_for: float) -> Standing | None:
        standing = self._standing(creds, known_good)
        return standing if standing.serves(fresh_for) else None

    async def begin(
        self,
        creds: Credentials,
        askers: tuple[str, ...],
        limits: Allowance,
        *,
        known_good: bool,
        fresh_for: float,
        hold: float,
    ) -> Turn:
        login = self._login(creds.rate_key)
        # Looked at once the turn is ours, not before: `at_hand` has just looked, and the
        # request we may wait for can answer this call.
        await login.lock.acquire()
        held = [login.lock]
        try:
            site = self._site(creds.site)
            while site.flight_full(self._clock(), limits.auth_failures_cap):
                await site.landed.wait()
            standing = self._standing(creds, known_good)
            if standing.serves(fresh_for):
                return Turn(standing)
            if not standing.verified:
                await site.new_credentials_lock.acquire()
                held.append(site.new_credentials_lock)
            admission = self._admit(login, site, askers, limits, new=not standing.verified)
            careful = site.careful(self._clock())
            if admission.granted:
                held = []  # until `finish`
                site.careful_in_flight += careful
            return Turn(standing, admission, careful=careful)
        finally:
            for lock in held:
                lock.release()

    async def finish(
        self, creds: Credentials, turn: Turn, answer: tuple[Balance, datetime] | None
    ) -> None:
        login, site = self._login(creds.rate_key), self._site(creds.site)
        login.window.add(self._clock())
        if turn.careful:
            site.careful_in_flight -= 1
            site.landed.set()
            site.landed = asyncio.Event()
        if answer is not None:
            site.proven_at = self._clock()
            self._refused.discard(creds.fingerprint)
            self._verified.add(creds.fingerprint)
            self._balances[creds.fingerprint] = _Balance(*answer, self._clock())
        login.lock.release()
        if not turn.standing.verified:
            site.new_credentials_lock.release()

    def _standing(self, creds: Credentials, known_good: bool) -> Standing:
        fingerprint = creds.fingerprint
        if known_good and fingerprint not in self._refused:
            self._verified.add(fingerprint)
        last = self._balances.get(fingerprint)
        known = None
        if last is not None:
            known = Known(last.balance, last.checked_at, age=self._clock() - last.at)
        return Standing(fingerprint in self._rejected, fingerprint in self._verified, known)

    def _admit(
        self, login: _Login, site: _Site, askers: tuple[str, ...], limits: Allowance, *, new: bool
    ) -> Admission:
        now = self._clock()
        asker_wait = auth_wait = 0.0
        if new:
            asker_wait = site.asker_wait(askers, now, limits.auth_failures_per_asker)
            auth_wait = site.auth_failures.wait(now, limits.auth_failures_per_site)
        return Admission(
            site_paused=max(site.paused_until - now, 0.0),
            asker_wait=asker_wait,
            auth_wait=auth_wait,
            cap_wait=site.cap_wait(now, limits.auth_failures_cap),
            login_wait=max(login.paused_until - now, login.window.wait(now, limits.max_per_minute)),
        )

    def _refuse(self, creds: Credentials) -> None:
        """SMSC refused `creds`: the guard sends them no more (see BalanceGuard.retry)."""
        self._rejected.add(creds.fingerprint)
        self._refused.add(creds.fingerprint)

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        self._refuse(creds)
        self._verified.discard(creds.fingerprint)
        self._balances.pop(creds.fingerprint, None)
        self._site(creds.site).add_auth_failure(askers, self._clock())

    async def retry(self, creds: Credentials) -> None:
        self._rejected.discard(creds.fingerprint)

    async def pause_login(self, rate_key: str, seconds: float) -> None:
        self._login(rate_key).paused_until = self._clock() + seconds

    async def pause_site(self, site: str, seconds: float) -> None:
        self._site(site).paused_until = self._clock() + seconds

    def _login(self, rate_key: str) -> _Login:
        login = self._logins.get(rate_key)
        if login is None:
            login = self._logins[rate_key] = _Login(self._window)
        return login

    def _site(self, site_url: str) -> _Site:
        site = self._sites.get(site_url)
        if site is None:
            site = self._sites[site_url] = _Site(self._auth_window)
        return site
