"""Scheduled balance checks.

When each account is next due lives in the database (`Account.next_check_at`), so a restart
neither skips accounts nor checks them all at once. APScheduler runs one short job every
second that hands due accounts to checks; accounts with the same credentials (the same login
watched by several chats) are checked with one request, and every request goes through the
shared per-login guard.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
    ) -> None:
        self._sessionmaker = sessionmaker
        self._guard = guard
        self._box = box
        self._monitor = monitor
        self._outbox = outbox
        self._now = now
        self._slots = asyncio.Semaphore(concurrency)
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
        async with self._sessionmaker() as session:
            accounts = (await session.scalars(select(Account))).all()
            for account in accounts:
                if account.credentials_key is None:
                    secret = self._box.decrypt(account.secret)
                    account.credentials_key = self._box.keyed_hash(
                        account.site, account.login, secret
                    )
                if account.next_check_at is None or account.next_check_at < now:
                    spread = min(START_SPREAD.total_seconds(), account.check_interval)
                    account.next_check_at = now + timedelta(seconds=self._rng.uniform(0, spread))
            await session.commit()
        log.info("checks ready accounts=%s", len(accounts))

    async def dispatch(self) -> int:
        """Start checks of what is due; returns how many credentials were handed out."""
        async with self._sessionmaker() as session:
            keys = (
                await session.scalars(
                    _checkable(select(Account.credentials_key).distinct())
                    .where(Account.next_check_at <= self._now())
                    .limit(BATCH + len(self._in_flight))
                )
            ).all()
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
        # Every account with these credentials, due or not: one answer serves them all.
        accounts = (
            await session.scalars(_checkable(select(Account)).where(Account.credentials_key == key))
        ).all()
        if not accounts:
            return
        first = accounts[0]
        creds = Credentials(first.site, first.login, self._box.decrypt(first.secret))
        known_good = any(a.state in (AccountState.OK, AccountState.LOW) for a in accounts)
        now = self._now()
        try:
            result = await self._guard.balance(creds, known_good=known_good)
        except SmscError as error:
            retry = getattr(error, "retry_after", None)  # the guard's refusals say when
            for account in accounts:
                await self._monitor.record_failure(session, account, error)
                account.next_check_at = now + self._next_gap(account, retry)
            log.info("check failed key=%s accounts=%s error=%s", key[:8], len(accounts), error)
        else:
            for account in accounts:
                await self._monitor.record(session, account, result)
                account.next_check_at = now + self._next_gap(account)
            log.debug("checked key=%s accounts=%s fresh=%s", key[:8], len(accounts), result.fresh)
        await session.commit()

    async def _postpone(self, key: str) -> None:
        """After a failed check, come back at the usual interval, not at once, every second."""
        async with self._sessionmaker() as session:
            accounts = (
                await session.scalars(select(Account).where(Account.credentials_key == key))
            ).all()
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
