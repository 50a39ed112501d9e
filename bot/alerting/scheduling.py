"""Scheduled balance checks.

When each account is next due lives in the database (`Account.next_check_at`), so a restart
neither skips accounts nor checks them all at once. A loop of the checks' own looks for due
accounts once a second (sooner when the first falls due, or when a large sweep's checks free
room), claims them (bot.alerting.due) and hands them to checks; accounts with the same
credentials (the same login watched by several chats) are checked with one request, and every
request goes through the shared per-login guard.

Several processes may share one database (replicas on PostgreSQL), so due accounts are claimed,
not read: one conditional UPDATE leases them (`lease_until`) and returns them. A leased account
is no other process's to take until its outcome is written, which ends the lease, or the lease
runs out because its process died; then another takes it over. An outcome is written only to
accounts still under the lease taken for it: a late answer never overwrites the work of the
process that took over. Leases compare the processes' clocks, which must agree (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.alerting.due import Checkable, Due, first_due, lease_due
from bot.alerting.monitoring import Monitor, Outcome
from bot.alerting.outbox import Outbox
from bot.alerting.outcomes import Claim
from bot.alerting.startup import StepBack, prepare_checks
from bot.alerting.writing import CheckWrites
from bot.smsc.check_errors import check_error
from bot.smsc.errors import SmscError
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import GuardUnavailable, SecretUnreadable
from bot.storage import direct
from bot.storage.crypto import SecretBox
from bot.storage.models import Account

log = logging.getLogger(__name__)

# Seconds between looks for due accounts, at most. A look that finds nothing due learns when the
# first falls due and looks again then, if sooner; a sweep larger than BATCH is looked for again
# as its checks end (see Checks._ended). So this is only how late an account set due from
# outside (another replica's claim run out, a hand-edited database) can be found: every change
# the bot makes itself sets the next check an interval ahead. A look with nothing due is an
# index probe, ≈ 0.8 ms of CPU: four looks a second kept an idle bot busy for 0.25 % of a core
# more, and cost an alert fan-out (27 sends a second) ≈ 0.1 ms of CPU a notification.
DISPATCH_EVERY = 1.0
# Seconds to the next look, on a database replicas share, after a claim that may have lost
# logins to another replica's (both read the same first due ones): one that took nothing
# although its look's probe saw accounts due, or a part of a sweep that came back short. A
# whole DISPATCH_EVERY later the other had claimed the rest of the sweep and checked it alone.
# The next look's probe says whether anything is still due. A look's first claim that took
# some is not followed so: a bot with checks falling due all the time would claim every 50 ms.
CONTENDED = 0.05
BATCH = 500  # credentials claimed and not yet written, per process, at most
CLAIM_PART = 50  # credentials claimed by one statement, at most (see dispatch)
JITTER = 0.05  # next checks land within ±5% of the interval, so they drift apart
START_SPREAD = timedelta(minutes=5)  # checks nobody made for a while are spread over this


class Counts(Protocol):
    """Where checks and alerts are counted (bot.ops.metrics)."""

    def check_done(self, outcome: str) -> None: ...

    def alert_raised(self, kind: str) -> None: ...


class _Uncounted:
    def check_done(self, outcome: str) -> None:
        pass

    def alert_raised(self, kind: str) -> None:
        pass


class Checks:
    """Claims due accounts and checks them, one request per distinct credentials."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        guard: BalanceGuard,
        box: SecretBox,
        monitor: Monitor,
        outbox: Outbox,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        concurrency: int = 50,
        rng: random.Random | None = None,
        lease_seconds: float = 60,
        writes: asyncio.Lock | None = None,
        metrics: Counts | None = None,
    ) -> None:
        """`lease_seconds`: how long a claim holds accounts (LEASE_SECONDS); `writes`: the turn
        to write SQLite, shared with the outbox (see Outbox); None where the database takes
        concurrent writers (PostgreSQL)."""
        self._sessionmaker = sessionmaker
        self._engine: AsyncEngine = sessionmaker.kw["bind"]
        self._direct: direct.Direct | None = None  # while looking (see _look_forever)
        self._guard = guard
        self._box = box
        self._now = now
        # SMSC's requests at once, held around the request alone (the guard takes it there),
        # and checks at once, each with the guard's round trips to its state before and after
        # its request: held through those too, the 50 slots had ≈ 36 requests in flight (on
        # PostgreSQL and Redis: 72-81 ms a slot for SMSC's 50). Twice as many checks keep the
        # slots busy, and what waits for one waits one request at most.
        self._slots = asyncio.Semaphore(concurrency)
        self._checks = asyncio.Semaphore(2 * concurrency)
        self._lease = timedelta(seconds=lease_seconds)
        # Outcomes are queued and written a batch at a time (bot.alerting.writing). On SQLite
        # the turn to write is shared with the outbox (`writes`) and the claims.
        # SQLite is one process's (bot.storage.instance): no other claims beside this one's.
        self._shared = self._engine.dialect.name != "sqlite"
        if writes is None and not self._shared:
            writes = asyncio.Lock()  # one writer: claims and writes still take turns
        self._write_turn = writes if writes is not None else contextlib.nullcontext()
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        # Set when checks end while more is due than the last look had room for: the next
        # look then comes at once, not at the next tick (see _look_forever).
        self._room = asyncio.Event()
        self._more_due = False
        self._next_due: datetime | None = None  # when the last look saw the first due
        self._clock = StepBack()
        self._metrics = metrics or _Uncounted()
        self._writes = CheckWrites(
            sessionmaker,
            monitor,
            outbox,
            self._write_turn,
            now=now,
            next_gap=self._next_gap,
            alert_raised=self._metrics.alert_raised,
        )
        self._late = 0  # claims that ran short before their check could start (see _check)
        self._claims_failing = False
        self._claiming: asyncio.Future[tuple[Due, bool]] | None = None
        self._looking: asyncio.Task[None] | None = None
        self._stopped = False
        # For /healthz: the scheduler's last look for due accounts, and the last check done.
        # Both count from the start until they first happen.
        self.last_dispatch_at = self.last_completed_at = now()

    def start(self) -> None:
        """Look for due accounts every DISPATCH_EVERY seconds (sooner while a sweep has more
        due than room), in the running loop, until `stop`. A loop of its own, not a scheduler
        job: the scheduler's own work for each run (≈ 0.6 ms of CPU) would cost as much as the
        look."""
        self._looking = asyncio.create_task(self._look_forever(), name="checks")

    def stop(self) -> None:
        """No more looks (a look under way ends quietly; `drain` waits for its claim)."""
        self._stopped = True
        if self._looking is not None:
            self._looking.cancel()

    async def _look_forever(self) -> None:
        # The looks go through a connection held for them (bot.storage.direct): through the
        # pool, each woke aiosqlite's thread five times, and four looks a second kept 1.3 % of
        # a core busy on a bot with nothing due.
        while not self._stopped:
            try:
                async with direct.held(self._engine) as held:
                    self._direct = held
                    try:
                        await self._look_until_stopped()
                    finally:
                        # A claim `stop` left under way runs on this connection: it goes back
                        # to the pool after the claim, not into another's hands before it.
                        if self._claiming is not None:
                            await asyncio.wait([self._claiming])
            except Exception as error:  # the database away: said once, as a failed claim is
                if not self._claims_failing:
                    log.warning("claiming due checks failed error=%r", error)
                self._claims_failing = True
                await asyncio.sleep(DISPATCH_EVERY)
            finally:
                self._direct = None

    async def _look_until_stopped(self) -> None:
        while not self._stopped:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._pause()):
                    await self._room.wait()
            self._room.clear()
            try:
                await self.dispatch()
            except Exception:  # the loop outlives any one bad look (/healthz)
                log.exception("looking for due checks failed")

    def _pause(self) -> float:
        """Seconds to the next look: DISPATCH_EVERY, or less when the last look found nothing
        due and saw the first account fall due sooner (a sweep then starts on time, not up
        to a look late), or after a claim another replica may have cut short (CONTENDED). A look
        that claimed something knows no next time: a bot with checks falling due all the time
        keeps to DISPATCH_EVERY, one claim for each look."""
        if self._next_due is None:
            return DISPATCH_EVERY
        return max(0.0, min((self._next_due - self._now()).total_seconds(), DISPATCH_EVERY))

    async def prepare(self) -> None:
        """At start: fill missing credential keys, and spread out the checks nobody made for a
        while (see bot.alerting.startup)."""
        log.info("checks ready accounts_prepared=%s", await self._prepare(self._now()))

    async def _prepare(self, now: datetime) -> int:
        return await prepare_checks(
            self._sessionmaker, self._box, now, self._lease, self._spread, 1 + JITTER
        )

    async def dispatch(self) -> int:
        """Start checks of what is due; returns how many credentials were handed out."""
        self.last_dispatch_at = now = self._now()
        if self._clock.stepped_back(now):
            # Checks set by the clock that ran ahead would wait as long as the step, and the
            # last check would seem done in the future. /healthz's due summary needs no change:
            # once they are back, what it counts as due is what is.
            self.last_completed_at = min(self.last_completed_at, now)
            async with self._write_turn:
                moved = await self._prepare(now)
            self._clock.repaired()
            log.warning("clock stepped back: checks set too far ahead moved accounts=%s", moved)
        if self._late:
            log.warning("checks ran out of lease before their turn claims=%s", self._late)
            self._late = 0
        room, started = BATCH - len(self._tasks), 0
        # No room, no look: maybe more is due, and the next look waits for room.
        self._more_due = room <= 0
        if self._more_due:
            self._next_due = None
        while room > 0:
            # Claimed a part at a time, each part's checks started before the next is claimed:
            # a claim of 500 logins held the loop for ≈ 70 ms (its rows, 500 decryptions)
            # before the first request went out, and SMSC's slots stood idle meanwhile.
            asked = min(room, CLAIM_PART)
            self._claiming = claiming = asyncio.ensure_future(self._claim(asked, probe=not started))
            try:
                due, more = await asyncio.shield(claiming)
            except asyncio.CancelledError:
                # `stop` cancels a look under way. Nothing more is started: end quietly. The
                # claim itself finishes (`drain` waits for it), so its connection is back in
                # the pool before the engine closes; what it claimed runs out with its lease.
                return started
            except Exception as error:  # the database away: one line, the next look tries again
                if not self._claims_failing:
                    log.warning("claiming due checks failed error=%r", error)
                self._claims_failing = True
                return started
            self._claims_failing = False
            for claim, (creds, known_good) in due.items():
                task = asyncio.create_task(self._check(claim, creds, known_good))
                self._tasks.add(task)
                task.add_done_callback(self._ended)
            started += len(due)
            if not more:
                break
            room -= len(due)
            self._more_due = room <= 0
        return started

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        # A sweep larger than BATCH: its next part is claimed once a part's room is free, not
        # up to DISPATCH_EVERY later (SMSC's slots ran dry meanwhile: 0.1-0.2 s at a time).
        if self._more_due and BATCH - len(self._tasks) >= CLAIM_PART:
            self._room.set()

    async def _claim(self, limit: int, *, probe: bool) -> tuple[Due, bool]:
        """Lease the accounts of up to `limit` due credentials, and say whether more may be due
        (bot.alerting.due). With `probe`, only if one is due; else note when the first will be
        (see _pause). Without, as for the parts after a full one, the claim itself finds what
        is due."""
        now = self._now()
        if probe:
            # A look with nothing due (most of them) reads an index, and writes nothing.
            self._next_due = None
            first = await first_due(self._engine, self._direct, now)
            if first is None or first > now:
                self._next_due = first
                return {}, False
        due, more = await lease_due(
            self._sessionmaker,
            self._direct,
            self._write_turn,
            self._guard,
            self._box,
            now,
            now + self._lease,
            limit,
        )
        if self._shared and not more and (not due or not probe):
            self._next_due = now + timedelta(seconds=CONTENDED)
        return due, more

    async def drain(self) -> None:
        """Wait for the checks under way, a claim, and once stopped the looks' end, which
        gives their connection back (tests, and a clean shutdown)."""
        while True:
            pending = [*self._tasks, self._claiming, self._looking if self._stopped else None]
            if not (waiting := [task for task in pending if task is not None and not task.done()]):
                return
            await asyncio.gather(*waiting, return_exceptions=True)

    async def _check(self, claim: Claim, creds: Checkable, known_good: bool) -> None:
        key, lease = claim
        try:
            async with self._checks:
                # Begun in the second half of its lease, a request and its write could outlast
                # it, and another process check the accounts again: left to run out, the lease
                # lets the next look (ours or another's) take them afresh.
                if self._now() >= lease - self._lease / 2:
                    self._late += 1
                    return
                try:
                    if isinstance(creds, SecretUnreadable):
                        raise creds
                    outcome: Outcome = await self._guard.balance(
                        creds, known_good=known_good, key=key, slot=self._slots
                    )
                except SmscError as error:
                    outcome = error
                    # The guard says its own outage once (bot.smsc.guard), not every login due.
                    level = logging.DEBUG if isinstance(error, GuardUnavailable) else logging.INFO
                    log.log(level, "check failed key=%s error=%s", key[:8], error)
            # Out of the check's turn: waiting for the write turn in it left SMSC idle while a
            # sweep's writes queued.
            await self._writes.write(claim, outcome)
            self.last_completed_at = self._now()
            self._metrics.check_done(
                "ok" if isinstance(outcome, BalanceResult) else check_error(outcome).value
            )
        except Exception:  # one account's trouble must not stop the others' checks
            log.exception("check failed key=%s", key[:8])
            await self._writes.postpone([claim])

    def _spread(self, interval: int) -> timedelta:
        return timedelta(seconds=self._rng.uniform(0, min(START_SPREAD.total_seconds(), interval)))

    def _next_gap(self, account: Account, retry_after: float | None = None) -> timedelta:
        seconds = account.check_interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            seconds = min(seconds, retry_after + self._rng.uniform(0, 5))
        return timedelta(seconds=seconds)
