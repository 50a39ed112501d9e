"""What the guard remembers, behind `GuardState`: per login its recent requests, its pause after
error 9 and its one-at-a-time turn; per site its recent authorisation errors (overall and per
asker), its pause after error 4 and the turn of never-verified credentials; per credentials
whether SMSC accepted or refused them and their last balance.

A request costs the state two steps, `begin` and `finish`, so that a shared state can make
each one round trip: looking, taking the turns and admitting go together, and so do counting
the answer, keeping the balance and handing the turns back.

`MemoryGuardState` (bot.smsc.windows) keeps it in this process, which is all one replica needs.
Several replicas share one state instead (`bot.fleet.limits.RedisGuardState`), so that SMSC's
limits hold for the fleet: nothing here imports Redis, the fleet implements this Protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.smsc.client import Balance, Credentials

# SMSC counts balance requests per login over a minute.
MINUTE = 60.0
# SMSC counts refused logins over 30 minutes, and so do the windows of authorisation errors: an
# asker refused once waits this long before new credentials of theirs are sent.
AUTH_WINDOW = 1800.0
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
