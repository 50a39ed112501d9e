"""Is the bot doing its job? The conditions behind /healthz and the heartbeat.

Healthy means: the Bot API answers polls (in webhook mode: answers, and delivers updates), the
scheduler looks for due accounts, checks complete while accounts are due, and notifications
leave the outbox. That the event loop answers is shown by the answer itself: /healthz is
served on the bot's own loop, so a stuck loop leaves it unanswered, which a health check's
timeout reports.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from apscheduler.schedulers.base import BaseScheduler

from bot.alerting.scheduling import Checks
from bot.observability import ObservabilitySettings
from bot.storage import stats
from bot.storage.engine import Sessions

log = logging.getLogger(__name__)

# What /healthz and /metrics wait for the database (and Redis) to answer. One that hangs (its
# host frozen, a network dropping packets) would otherwise hang them without end: the Docker
# health check then reports its own timeout instead of the reason, and Prometheus loses every
# metric. A PostgreSQL connection given up on mid-query costs up to 2 s more, SQLAlchemy's
# attempt to close it politely: the answer comes within 4 s, under the probe's TIMEOUT
# (bot.ops.probe), so it still gets the reasons.
ANSWER_TIMEOUT = 2.0


class TelegramSilence(Protocol):
    def silence(self) -> float:
        """Seconds since the Bot API last answered getUpdates (webhook mode: anything)."""
        ...


class WebhookDelivery(Protocol):
    def problem(self, now: datetime, within: float) -> str | None:
        """Why Telegram cannot deliver updates lately, if it cannot."""
        ...


class Pingable(Protocol):
    async def ping(self) -> object:
        """Raises when the server does not answer (redis.asyncio.Redis)."""
        ...


class Health:
    def __init__(
        self,
        settings: ObservabilitySettings,
        *,
        sessionmaker: Sessions,
        telegram: TelegramSilence,
        scheduler: BaseScheduler,
        checks: Checks,
        webhook: WebhookDelivery | None = None,
        redis: Pingable | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._webhook = webhook
        self._redis = redis
        self._sessionmaker = sessionmaker
        self._telegram = telegram
        self._scheduler = scheduler
        self._checks = checks
        self._now = now

    async def problems(self) -> list[str]:
        """What is wrong, one short line each; empty when healthy."""
        settings, now = self._settings, self._now()
        problems = []
        silence = self._telegram.silence()
        if silence > settings.health_telegram_seconds:
            awaited = "getUpdates" if self._webhook is None else "anything"
            problems.append(f"telegram: no answer to {awaited} for {silence:.0f} s")
        if self._webhook is not None:
            problem = self._webhook.problem(now, settings.health_telegram_seconds)
            if problem is not None:
                problems.append(f"telegram: {problem}")
        idle = (now - self._checks.last_dispatch_at).total_seconds()
        if not self._scheduler.running:
            # Started once Telegram has answered getMe (bot.runner): until then, this is why.
            problems.append("scheduler: not running (it starts once Telegram answers)")
        elif idle > settings.health_scheduler_seconds:
            problems.append(f"scheduler: no look for due accounts for {idle:.0f} s")
        # Asked together: the answer waits for the slower, not for both one after the other.
        redis, database = await asyncio.gather(self._redis_problems(), self._stored_problems(now))
        return problems + redis + database

    async def _redis_problems(self) -> list[str]:
        if self._redis is None:
            return []
        # Without it replicas neither ask SMSC (the guard fails closed) nor handle updates.
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                await self._redis.ping()
        except Exception as error:
            log.warning("health: redis ping failed error=%s", type(error).__name__)
            return [f"redis: {failure(error)}"]
        return []

    async def _stored_problems(self, now: datetime) -> list[str]:
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await self._database_problems(now)
        except Exception as error:  # a database that fails to answer is itself the problem
            log.warning("health: database read failed error=%s", type(error).__name__)
            return [f"database: {failure(error)}"]

    async def _database_problems(self, now: datetime) -> list[str]:
        problems = []
        async with self._sessionmaker() as session:
            shortest, due_since = await stats.due_summary(session, now)
            _count, oldest = await stats.backlog(session)
        if shortest is not None:  # accounts are due
            # Counted from when the first became due, if later: an account added after hours
            # without any is not late the moment it is due.
            since = (now - max(self._checks.last_completed_at, due_since)).total_seconds()
            if since > self._settings.health_checks_factor * shortest:
                problems.append(f"checks: none completed for {since:.0f} s")
        if oldest is not None:
            age = (now - oldest).total_seconds()
            if age > self._settings.health_outbox_seconds:
                problems.append(f"outbox: a notification undelivered for {age:.0f} s")
        return problems


def failure(error: Exception) -> str:
    """How a reason names what went wrong: "timeout" for no answer in ANSWER_TIMEOUT."""
    return "timeout" if isinstance(error, TimeoutError) else type(error).__name__
