"""Scheduled balance checks.

When each account is next due lives in the database (`Account.next_check_at`), so a restart
neither skips accounts nor checks them all at once. APScheduler runs one short job every
second that hands due accounts to checks; accounts with the same credentials (the same login
watched by several chats) are checked with one request, and every request goes through the
shared per-login guard.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import contains_eager

from bot.alerting.monitoring import Monitor, Outcome
from bot.alerting.outbox import Outbox
from bot.smsc.check_errors import check_error
from bot.smsc.client import Credentials, SmscError
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, AccountState, Notification
from bot.storage.stats import checkable

log = logging.getLogger(__name__)

DISPATCH_EVERY = 1.0  # seconds between looks for due accounts
BATCH = 500  # credentials handed to checks per look
JITTER = 0.05  # next checks land within ±5% of the interval, so they drift apart
START_SPREAD = timedelta(minutes=5)  # overdue accounts are spread over this after a start
PREPARE_BATCH = 1000  # accounts read at a time when preparing
WRITE_BATCH = 50  # logins whose outcomes are written in one transaction, at most


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
    """Finds due accounts and checks them, one request per distinct credentials."""

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
        writes: asyncio.Lock | None = None,
        metrics: Counts | None = None,
    ) -> None:
        """`writes`: the turn to write the database, shared with the outbox (see Outbox)."""
        self._sessionmaker = sessionmaker
        self._guard = guard
        self._box = box
        self._monitor = monitor
        self._outbox = outbox
        self._now = now
        self._slots = asyncio.Semaphore(concurrency)
        # SQLite has one writer, so checks do not write side by side: they queue their
        # outcomes, and whichever takes the turn next writes the outcomes waiting (up to
        # WRITE_BATCH logins), its own included, in one transaction. A sweep of thousands so
        # costs a few transactions a second, not one per login, and leaves SQLite's writer
        # free most of the time for the handlers' commits. The turn is shared with the outbox
        # (`writes`, see Outbox); checks queue among themselves first, so an alert's
        # bookkeeping waits behind one write of checks, not behind every check in flight.
        self._check_turn = asyncio.Lock()
        self._write_turn = writes or asyncio.Lock()
        self._waiting: dict[str, Outcome] = {}
        self._rng = rng or random.Random()
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._metrics = metrics or _Uncounted()
        # For /healthz: the scheduler's last look for due accounts, and the last check done.
        # Both count from the start until they first happen.
        self.last_dispatch_at = self.last_completed_at = now()

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(
            self.dispatch,
            IntervalTrigger(seconds=DISPATCH_EVERY),
            id="dispatch-checks",
            name="hand due accounts to checks",
        )

    async def prepare(self) -> None:
        """At start: fill missing credential keys, and spread overdue checks out."""
        now = self._now()
        # Only the accounts that need it, a batch at a time: loading every account at once
        # held 10,000 of them in memory (and kept the process that much bigger) for nothing.
        needs_work = (
            (Account.credentials_key.is_(None))
            | (Account.next_check_at.is_(None))
            | (Account.next_check_at < now)
        )
        done, last_id = 0, 0
        while True:
            async with self._sessionmaker() as session:
                accounts = (
                    await session.scalars(
                        select(Account)
                        .where(needs_work, Account.id > last_id)
                        .order_by(Account.id)
                        .limit(PREPARE_BATCH)
                    )
                ).all()
                for account in accounts:
                    if account.credentials_key is None:
                        secret = self._box.decrypt(account.secret)
                        account.credentials_key = self._box.keyed_hash(
                            account.site, account.login, secret
                        )
                    if account.next_check_at is None or account.next_check_at < now:
                        spread = min(START_SPREAD.total_seconds(), account.check_interval)
                        account.next_check_at = now + timedelta(
                            seconds=self._rng.uniform(0, spread)
                        )
                await session.commit()
            if not accounts:
                break
            done += len(accounts)
            last_id = accounts[-1].id
        log.info("checks ready accounts_prepared=%s", done)

    async def dispatch(self) -> int:
        """Start checks of what is due; returns how many credentials were handed out."""
        self.last_dispatch_at = self._now()
        try:
            due = await self._due()
        except asyncio.CancelledError:
            # The scheduler cancels a look under way when it shuts down, and would log that as
            # the job's failure, traceback and all. Nothing was started: end quietly.
            return 0
        for key, (creds, known_good) in due.items():
            self._in_flight.add(key)
            task = asyncio.create_task(self._check(key, creds, known_good))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(due)

    async def _due(self) -> dict[str, tuple[Credentials, bool]]:
        """Credentials due and not being checked, each with whether SMSC ever accepted them."""
        async with self._sessionmaker() as session:
            query = (
                checkable(select(Account.credentials_key).distinct())
                .where(Account.next_check_at <= self._now())
                .limit(BATCH + len(self._in_flight))
            )
            if session.bind.dialect.name == "sqlite":
                # Without an order SQLite walks every account (by credentials_key, which
                # gives DISTINCT for free) each second, due or not: 13 ms at 10,000 accounts.
                # Ordered, it reads the next_check_at index for what is due, most overdue
                # first. (Other databases refuse ORDER BY a column DISTINCT leaves out.)
                query = query.order_by(Account.next_check_at)
            keys = [key for key in await session.scalars(query) if key not in self._in_flight]
            if not keys:
                return {}
            # Every account with these credentials, due or not: one answer serves them all.
            rows = await session.execute(
                checkable(
                    select(
                        Account.credentials_key,
                        Account.site,
                        Account.login,
                        Account.secret,
                        Account.state,
                    )
                ).where(Account.credentials_key.in_(keys[:BATCH]))
            )
        due: dict[str, tuple[Credentials, bool]] = {}
        for key, site, login, secret, state in rows:
            good = state in (AccountState.OK, AccountState.LOW)
            if key in due:
                creds, known_good = due[key]
                due[key] = creds, known_good or good
            else:
                due[key] = Credentials(site, login, self._box.decrypt(secret)), good
        return due

    async def drain(self) -> None:
        """Wait for the checks under way (tests, and a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _check(self, key: str, creds: Credentials, known_good: bool) -> None:
        try:
            async with self._slots:
                try:
                    outcome: Outcome = await self._guard.balance(creds, known_good=known_good)
                except SmscError as error:
                    outcome = error
                    log.info("check failed key=%s error=%s", key[:8], error)
            # The slot bounds requests to SMSC only: waiting for the write turn in it left
            # SMSC idle while a sweep's writes queued.
            self._waiting[key] = outcome
            await self._write_waiting(key)
            self._outbox.wake()
            self.last_completed_at = self._now()
            self._metrics.check_done(
                "ok" if isinstance(outcome, BalanceResult) else check_error(outcome).value
            )
        except Exception:  # one account's trouble must not stop the others' checks
            log.exception("check failed key=%s", key[:8])
            await self._postpone([key])
        finally:
            self._in_flight.discard(key)

    async def _write_waiting(self, key: str) -> None:
        """Write the outcome of `key` and others waiting (see __init__), unless another check
        already wrote it."""
        async with self._check_turn, self._write_turn:
            if key not in self._waiting:
                return
            # A bounded batch: its accounts are worked through without a pause for other
            # tasks, and a thousand at once would hold handlers up for a noticeable moment.
            keys = [key, *itertools.islice((k for k in self._waiting if k != key), WRITE_BATCH - 1)]
            outcomes = {k: self._waiting.pop(k) for k in keys}
            try:
                async with self._sessionmaker() as session:
                    await self._apply(session, outcomes)
            except Exception:
                log.exception("writing checks failed logins=%s", len(outcomes))
                await self._postpone(keys)

    async def _apply(self, session: AsyncSession, outcomes: dict[str, Outcome]) -> None:
        # The accounts are read now, not before the request: one removed, re-added with other
        # credentials or stopped meanwhile is left alone. Their chats come in the same query.
        accounts = (
            await session.scalars(
                checkable(select(Account))
                .options(contains_eager(Account.chat))
                .where(Account.credentials_key.in_(outcomes))
            )
        ).all()
        await self._monitor.record(
            session, [(account, outcomes[account.credentials_key]) for account in accounts]
        )
        now = self._now()
        for account in accounts:
            outcome = outcomes[account.credentials_key]
            retry = getattr(outcome, "retry_after", None)  # the guard's refusals say when
            account.next_check_at = now + self._next_gap(account, retry)
        raised = [item.kind for item in session.new if isinstance(item, Notification)]
        await session.commit()
        for kind in raised:
            self._metrics.alert_raised(kind)
        log.debug("checks written logins=%s accounts=%s", len(outcomes), len(accounts))

    async def _postpone(self, keys: list[str]) -> None:
        """After a failed check, come back at the usual interval, not at once, every second."""
        async with self._sessionmaker() as session:
            accounts = await session.scalars(
                select(Account).where(Account.credentials_key.in_(keys))
            )
            for account in accounts:
                account.next_check_at = self._now() + self._next_gap(account)
            await session.commit()

    def _next_gap(self, account: Account, retry_after: float | None = None) -> timedelta:
        seconds = account.check_interval * self._rng.uniform(1 - JITTER, 1 + JITTER)
        if retry_after is not None:
            seconds = min(seconds, retry_after + self._rng.uniform(0, 5))
        return timedelta(seconds=seconds)


def create_scheduler() -> AsyncIOScheduler:
    """In-memory jobs, rebuilt from our tables at every start; start it inside the running
    loop. (APScheduler's SQLAlchemy job store is synchronous and pickles jobs.)"""
    return AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
    )
