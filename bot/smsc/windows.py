"""What the guard remembers, behind `GuardState`: per login its recent requests, its pause after
error 9 and its one-at-a-time turn; per site its recent authorisation errors (overall and per
asker), its pause after error 4 and the turn of never-verified credentials; per credentials
whether SMSC accepted or refused them and their last balance.

A request costs the state two steps, `begin` and `finish`, so that a shared state can make
each one round trip: looking, taking the turns and admitting go together, and so do counting
the answer, keeping the balance and handing the turns back.

`MemoryGuardState` keeps it in this process, which is all one replica needs. Several replicas
share one state instead (`bot.fleet.limits.RedisGuardState`), so that SMSC's limits hold for
the fleet: nothing here imports Redis, the fleet implements this Protocol.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.smsc.client import Balance, Credentials

# SMSC counts balance requests per login over a minute.
MINUTE = 60.0
# The cap on authorisation errors counts requests in flight too while a site is unproven: no
# request there was answered OK (by this process) this recently. Why: SMSC's allow-lists refuse
# all-or-nothing per IP, so after a server move every watched login of a site is refused, and
# the first round sends them together (the scheduler runs up to 50 checks at once); counting
# only refusals already answered lets all of them through. Unproven, at most cap - refusals
# requests are in flight (the others wait for one to land), so refusals stay under SMSC's five
# however they answer; one OK answer proves the IP is accepted and requests run freely again,
# so a sweep keeps its concurrency but for one round trip. The proof is this process's own:
# another replica's OK says nothing of this one's IP.
PROOF_SPAN = 60.0
# Should a request find the flight full once admitted after all, it is asked again this soon.
FLIGHT_RETRY = 5.0


class GuardStateUnavailable(Exception):
    """The state could not be read or written (say, Redis is down): the guard must not send."""


@dataclass(frozen=True, slots=True)
class Known:
    """The last balance SMSC gave for some credentials, and how old it is (in the state's time,
    so replicas whose clocks differ agree on it)."""

    balance: Balance
    checked_at: datetime  # UTC wall time when SMSC answered
    age: float


@dataclass(frozen=True, slots=True)
class Standing:
    """What is known of one set of credentials."""

    rejected: bool  # SMSC answered error 2 to them: never sent again until `retry`
    verified: bool  # SMSC accepted them (or the caller knows it did)
    known: Known | None

    def serves(self, fresh_for: float) -> bool:
        """Answers a call without a request: refused credentials, or a balance this recent."""
        return self.rejected or (self.known is not None and self.known.age < fresh_for)


@dataclass(frozen=True, slots=True)
class Admission:
    """Seconds to wait before a request may be sent, by reason; all zero: it may go now.

    The asker's and the site's allowances hold for never-verified credentials; the site's cap
    for all: known good ones fail too when the bot's IP changes or an allow-list does.
    """

    site_paused: float  # after error 4
    asker_wait: float  # an asker's allowance of authorisation errors is spent
    auth_wait: float  # the site's allowance of authorisation errors is spent
    cap_wait: float  # the site's cap of authorisation errors is reached (with those in flight)
    login_wait: float  # after error 9, or the login's requests of the last minute

    @property
    def granted(self) -> bool:
        waits = (self.site_paused, self.asker_wait, self.auth_wait, self.cap_wait, self.login_wait)
        return max(waits) <= 0


@dataclass(frozen=True, slots=True)
class Allowance:
    """The guard's limits, passed with each admission (the windows' spans belong to the state)."""

    max_per_minute: int
    auth_failures_per_site: int
    auth_failures_per_asker: int
    auth_failures_cap: int  # of any credentials, known good too: a whole site waits after it


@dataclass(frozen=True, slots=True)
class Turn:
    """What `GuardState.begin` found. `admission` None: `standing` serves the call, nothing is
    held. Granted: the turns are held until `finish`. Refused: nothing is held."""

    standing: Standing
    admission: Admission | None = None
    ticket: str = ""  # names the granted request for `finish`, where the state needs it
    # The turns go by themselves this long after `begin` (a holder may die): the request must
    # be over by then. None: held until `finish`, however long it takes.
    bound: float | None = None
    careful: bool = False  # counted in flight against the cap, the site unproven (PROOF_SPAN)


class GuardState(Protocol):
    """Everything `BalanceGuard` remembers. Methods raise `GuardStateUnavailable` when the
    state cannot be reached; the guard then sends nothing."""

    async def standing(self, creds: Credentials, *, known_good: bool) -> Standing:
        """The credentials' standing; `known_good` marks them verified unless rejected."""

    def at_hand(self, creds: Credentials, *, known_good: bool, fresh_for: float) -> Standing | None:
        """The standing (as `standing`) if it serves the call and the state can tell without
        waiting; else None. Spares a state in this process a task per cached answer; a shared
        one answers None and looks in `begin`, in the same round trip as the turn."""

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
        """The credentials' standing (as `standing`); unless it serves the call, the login's
        turn (one request at a time; and the site's for never-verified credentials: several
        checked side by side could overshoot the allowance of authorisation errors), waited
        for, as is a place in the site's flight while it is unproven (PROOF_SPAN), and the
        request's admission. A granted request counts in its login's window from
        now. A state that lets the turns go by themselves (their holder may die) does so no
        sooner than `hold` seconds on, and says when in `Turn.bound`."""

    async def finish(
        self, creds: Credentials, turn: Turn, answer: tuple[Balance, datetime] | None
    ) -> None:
        """The granted request of `turn` is over: count it from now (its answer), keep its
        balance and its time if SMSC gave one (the credentials are then verified), and hand
        the turns back."""

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        """SMSC answered error 2: refuse the credentials, forget their balance, count the
        failure against the site and each asker."""

    async def retry(self, creds: Credentials) -> None:
        """Let rejected credentials be sent again. Until SMSC accepts them, they are not
        verified by a caller's `known_good` (another chat's account not checked since)."""

    async def pause_login(self, rate_key: str, seconds: float) -> None: ...

    async def pause_site(self, site: str, seconds: float) -> None: ...


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
        auth_window: float = 1800.0,
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

    async def rejected(self, creds: Credentials, askers: tuple[str, ...]) -> None:
        self._rejected.add(creds.fingerprint)
        self._refused.add(creds.fingerprint)
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
