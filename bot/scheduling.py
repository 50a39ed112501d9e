"""Scheduled balance checks.

When each account is next due lives in the database (`Account.next_check_at`), so a restart
neither skips accounts nor checks them all at once. APScheduler runs one short job every
second that hands due accounts to checks; accounts with the same credentials (the same login
watched by several chats) are checked with one request, and every request goes through the
shared per-login guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import contains_eager

from bot.crypto import SecretBox
from bot.guard import BalanceGuard
from bot.models import Account, AccountState, Chat
from bot.monitoring import Monitor
from bot.notifications import Outbox
from bot.smsc import Credentials, SmscError

log = logging.getLogger(__name__)

DISPATCH_EVERY = 1.0  # seconds between looks for due accounts
BATCH = 500  # credentials handed to checks per look
JITTER = 0.05  # next checks land within ±5% of the interval, so they drift apart
START_SPREAD = timedelta(minutes=5)  # overdue accounts are spread over this after a start
PREPARE_BATCH = 1000  # accounts read at a time when preparing
# After each check's write, SQLite's writer is left free for this share of the time the write
# held it. Checks back to back (every account due at once) kept it busy nearly all the time,
# and a handler's commit, retried inside SQLite only every 100 ms, waited out busy_timeout:
# 4 of 20 /threshold failed with "database is locked" in a 10,000-account sweep, none with
# this. Such a sweep runs a fifth slower; checks spread out as usual lose nothing.
WRITE_PAUSE = 0.25


def _checkable(query):
    """Accounts of active chats whose credentials SMSC has not refused."""
    return query.join(Chat, Chat.id == Account.chat_id).where(
        Chat.active.is_(True),
        ~((Account.state == AccountState.CANT_CHECK) & (Account.last_error == "auth")),
    )


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
    ) -> None:
        """`writes`: the turn to write the database, shared with the outbox (see Outbox)."""
        self._sessionmaker = sessionmaker
        self._guard = guard
        self._box = box
        self._monitor = monitor
        self._outbox = outbox
        self._now = now
        self._slots = asyncio.Semaphore(concurrency)
        # SQLite has one writer. A check's write transaction runs from its first flush to its
        # commit, over all the accounts it updates; checks writing side by side queued inside
        # SQLite (busy_timeout) and, in a sweep of thousands, failed with "database is
        # locked". Checks take turns with the outbox instead (the `writes` lock), and queue among
        # themselves first, so an alert's bookkeeping waits behind one check, not fifty.
        self._check_turn = asyncio.Lock()
        self._write_turn = writes or asyncio.Lock()
        self._rng = rng or random.Random()
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

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
        try:
            keys = await self._due_keys()
        except asyncio.CancelledError:
            # The scheduler cancels a look under way when it shuts down, and would log that as
            # the job's failure, traceback and all. Nothing was started: end quietly.
            return 0
        started = 0
        for key in keys:
            if key in self._in_flight or started >= BATCH:
                continue
            self._in_flight.add(key)
            task = asyncio.create_task(self._check(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started += 1
        return started

    async def _due_keys(self) -> list[str]:
        async with self._sessionmaker() as session:
            query = (
                _checkable(select(Account.credentials_key).distinct())
                .where(Account.next_check_at <= self._now())
                .limit(BATCH + len(self._in_flight))
            )
            if session.bind.dialect.name == "sqlite":
                # Without an order SQLite walks every account (by credentials_key, which
                # gives DISTINCT for free) each second, due or not: 13 ms at 10,000 accounts.
                # Ordered, it reads the next_check_at index for what is due, most overdue
                # first. (Other databases refuse ORDER BY a column DISTINCT leaves out.)
                query = query.order_by(Account.next_check_at)
            return list((await session.scalars(query)).all())

    async def drain(self) -> None:
        """Wait for the checks under way (tests, and a clean shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _check(self, key: str) -> None:
        try:
            async with self._slots, self._sessionmaker() as session:
                await self._check_accounts(session, key)
            self._outbox.wake()
        except Exception:  # one account's trouble must not stop the others' checks
            log.exception("check failed key=%s", key[:8])
            await self._postpone(key)
        finally:
            self._in_flight.discard(key)

    async def _check_accounts(self, session: AsyncSession, key: str) -> None:
        # Every account with these credentials, due or not: one answer serves them all. Their
        # chats come in the same query, so Monitor finds each in the session, not one query
        # per account.
        accounts = (
            await session.scalars(
                _checkable(select(Account))
                .options(contains_eager(Account.chat))
                .where(Account.credentials_key == key)
            )
        ).all()
        if not accounts:
            return
        # Give the connection back while SMSC answers: the pool is smaller than the number of
        # checks waiting on SMSC, and handlers need connections meanwhile.
        await session.commit()
        first = accounts[0]
        creds = Credentials(first.site, first.login, self._box.decrypt(first.secret))
        known_good = any(a.state in (AccountState.OK, AccountState.LOW) for a in accounts)
        now = self._now()
        try:
            result = await self._guard.balance(creds, known_good=known_good)
        except SmscError as error:
            retry = getattr(error, "retry_after", None)  # the guard's refusals say when
            async with self._writing():
                for account in accounts:
                    await self._monitor.record_failure(session, account, error)
                    account.next_check_at = now + self._next_gap(account, retry)
                await session.commit()
            log.info("check failed key=%s accounts=%s error=%s", key[:8], len(accounts), error)
        else:
            async with self._writing():
                for account in accounts:
                    await self._monitor.record(session, account, result)
                    account.next_check_at = now + self._next_gap(account)
                await session.commit()
            log.debug("checked key=%s accounts=%s fresh=%s", key[:8], len(accounts), result.fresh)

    async def _postpone(self, key: str) -> None:
        """After a failed check, come back at the usual interval, not at once, every second."""
        async with self._writing(), self._sessionmaker() as session:
            accounts = (
                await session.scalars(select(Account).where(Account.credentials_key == key))
            ).all()
            for account in accounts:
                account.next_check_at = self._now() + self._next_gap(account)
            await session.commit()

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        """A check's turn to write (see __init__), and the pause after it (see WRITE_PAUSE)."""
        async with self._check_turn:
            began = time.monotonic()
            async with self._write_turn:
                yield
            await asyncio.sleep((time.monotonic() - began) * WRITE_PAUSE)

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
