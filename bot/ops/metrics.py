"""What the bot counts about itself: Prometheus metrics, and the last hour's tallies /status shows.

`Metrics` owns a CollectorRegistry of its own (not prometheus_client's global one), made in the
app wiring and handed to whoever counts. What the database already knows (balances, accounts,
the outbox) is not counted along the way but read when scraped (`read_database`): the series of
a removed account then vanish by themselves, and no module needs a hook for them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import NamedTuple

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot import logs
from bot.alerting import forecast
from bot.ops import health
from bot.smsc.sites import site_label
from bot.storage import stats
from bot.storage.engine import Sessions

log = logging.getLogger(__name__)

HOUR = 3600.0
SECONDS_PER_DAY = 86400
ACCOUNT_LABELS = ("account", "login", "site", "chat_id")
# Raise to delivery: seconds when Telegram is well, up to the outbox's day of retries.
DELIVERY_BUCKETS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800, 86400)
UPDATE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class LastHour:
    """Events by label over the last hour, in minute buckets: a sweep of thousands of checks
    costs sixty small tallies, not an entry each."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._minutes: deque[tuple[int, Tally[str]]] = deque()

    def add(self, label: str) -> None:
        minute = int(self._clock() // 60)
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append((minute, Tally()))
        self._minutes[-1][1][label] += 1
        self._forget(minute)

    def counts(self) -> Tally[str]:
        self._forget(int(self._clock() // 60))
        total: Tally[str] = Tally()
        for _minute, tally in self._minutes:
            total.update(tally)
        return total

    def _forget(self, minute: int) -> None:
        while self._minutes and self._minutes[0][0] <= minute - HOUR // 60:
            self._minutes.popleft()


@dataclass(frozen=True)
class Failure:
    at: datetime
    what: str  # plain text, masked as log lines are: /status shows it


class Balance(NamedTuple):
    """An account of an active chat, as its gauges show it."""

    labels: tuple[str, ...]  # ACCOUNT_LABELS
    balance: Decimal
    credit: Decimal
    runway: float | None  # seconds; None when nothing is spent
    checked_at: datetime | None  # when SMSC last answered its balance


@dataclass
class DatabaseView:
    """What the database says at a scrape (or a /status)."""

    accounts: int = 0
    active_chats: int = 0
    backlog: int = 0
    oldest_pending_age: float = 0.0  # seconds; 0 when nothing waits
    balances: list[Balance] = field(default_factory=list)


class _DatabaseCollector(Collector):
    """Yields the gauges of the last `DatabaseView` read; None: the last read failed, and only
    smsc_bot_database_up says so (a zero would read as no accounts, no backlog)."""

    def __init__(self) -> None:
        self.view: DatabaseView | None = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        view = self.view
        yield GaugeMetricFamily(
            "smsc_bot_database_up",
            "1 when the database answered this scrape's read; 0 leaves its gauges out",
            value=0 if view is None else 1,
        )
        if view is None:
            return
        balance = GaugeMetricFamily(
            "smsc_bot_account_balance",
            "SMSC balance, in the account's currency",
            labels=ACCOUNT_LABELS,
        )
        credit = GaugeMetricFamily(
            "smsc_bot_account_credit",
            "SMSC credit, in the account's currency",
            labels=ACCOUNT_LABELS,
        )
        runway = GaugeMetricFamily(
            "smsc_bot_account_runway_seconds",
            "How long the balance lasts at the last week's spending (absent when nothing is spent)",
            labels=ACCOUNT_LABELS,
        )
        # The balance of an account that can no longer be checked stays where it was: its age
        # is what tells (`time() - smsc_bot_account_balance_timestamp_seconds > 3600`).
        checked = GaugeMetricFamily(
            "smsc_bot_account_balance_timestamp_seconds",
            "When SMSC last answered the account's balance (unix time); it stops while the "
            "account cannot be checked",
            labels=ACCOUNT_LABELS,
        )
        for row in view.balances:
            balance.add_metric(row.labels, float(row.balance))
            credit.add_metric(row.labels, float(row.credit))
            if row.runway is not None:
                runway.add_metric(row.labels, row.runway)
            if row.checked_at is not None:
                checked.add_metric(row.labels, row.checked_at.timestamp())
        yield balance
        yield credit
        yield runway
        yield checked
        yield GaugeMetricFamily("smsc_bot_accounts", "SMSC accounts watched", value=view.accounts)
        yield GaugeMetricFamily(
            "smsc_bot_active_chats", "Chats the bot works for", value=view.active_chats
        )
        yield GaugeMetricFamily(
            "smsc_bot_outbox_backlog", "Notifications not yet delivered", value=view.backlog
        )
        yield GaugeMetricFamily(
            "smsc_bot_outbox_oldest_age_seconds",
            "Age of the oldest notification not yet delivered (0 when none waits)",
            value=view.oldest_pending_age,
        )


class Metrics:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._now = now
        self.started_at = now()
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        # prometheus_client adds the `_total` of counters itself.
        self.checks = Counter(
            "smsc_bot_checks",
            "Balance checks completed, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.smsc_requests = Counter(
            "smsc_bot_smsc_requests",
            "Requests to SMSC by site and result: ok, the SMSC error code, network or protocol",
            ["site", "result"],
            registry=registry,
        )
        self.guard_decisions = Counter(
            "smsc_bot_guard_decisions",
            "Balance requests by how the guard served them: fetched, cache, stale, paused, "
            "rejected",
            ["decision"],
            registry=registry,
        )
        self.alerts = Counter(
            "smsc_bot_alerts", "Alerts raised, by kind", ["kind"], registry=registry
        )
        self.telegram_errors = Counter(
            "smsc_bot_telegram_api_errors",
            "Failed Bot API calls by method and error code (network: no answer)",
            ["method", "code"],
            registry=registry,
        )
        self.update_seconds = Histogram(
            "smsc_bot_update_handling_seconds",
            "Time to handle one Telegram update",
            buckets=UPDATE_BUCKETS,
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "smsc_bot_notification_delivery_seconds",
            "From an alert raised to Telegram accepting it",
            buckets=DELIVERY_BUCKETS,
            registry=registry,
        )
        self._database = _DatabaseCollector()
        registry.register(self._database)
        self._delivered_upto = self.started_at  # deliveries before this start are not ours
        self.checks_last_hour = LastHour(clock)
        self.smsc_errors_last_hour = LastHour(clock)
        self.last_telegram_failure: Failure | None = None
        self.last_smsc_failure: Failure | None = None
        self._database_failing = False  # the last scrape's read failed: one log line per streak

    # ----- counting ------------------------------------------------------------------------

    def check_done(self, outcome: str) -> None:
        self.checks.labels(outcome).inc()
        self.checks_last_hour.add(outcome)

    def alert_raised(self, kind: str) -> None:
        self.alerts.labels(kind).inc()

    def smsc_answered(self, site: str, result: str, failure: str | None = None) -> None:
        """`result`: "ok", an SMSC error code, "network" or "protocol"; `failure` says what
        went wrong, for /status."""
        self.smsc_requests.labels(site_label(site), result).inc()
        if failure is not None:
            self.smsc_errors_last_hour.add(result)
            self.last_smsc_failure = Failure(self._now(), logs.mask(failure))

    def telegram_failed(self, method: str, code: str, what: str) -> None:
        self.telegram_errors.labels(method, code).inc()
        # aiogram's network errors quote the request URL, bot token and all.
        self.last_telegram_failure = Failure(self._now(), logs.mask(f"{method}: {what}"))

    # ----- reading the database ------------------------------------------------------------

    async def read_database(self, sessionmaker: Sessions) -> DatabaseView:
        """Read the gauges the database knows into the registry, and observe the deliveries
        since the last read (the outbox records them; counting them here needs no hook)."""
        now = self._now()
        async with sessionmaker() as session:
            view = DatabaseView(
                accounts=await stats.count_accounts(session),
                active_chats=await stats.count_active_chats(session),
            )
            view.backlog, oldest = await stats.backlog(session)
            if oldest is not None:
                view.oldest_pending_age = max(0.0, (now - oldest).total_seconds())
            for row in await stats.watched_balances(session):
                name, login, site, chat_id, balance, credit, rate, checked_at = row
                runway = forecast.runway(balance, rate, now)
                view.balances.append(
                    Balance(
                        (name, login or "", site_label(site), str(chat_id)),
                        balance,
                        credit or Decimal(0),
                        None if runway is None else float(runway.days * SECONDS_PER_DAY),
                        checked_at,
                    )
                )
            for created_at, sent_at in await stats.deliveries_after(session, self._delivered_upto):
                self.delivery_seconds.observe(max(0.0, (sent_at - created_at).total_seconds()))
                self._delivered_upto = max(self._delivered_upto, sent_at)
        self._database.view = view
        return view

    async def read_database_within(self, sessionmaker: Sessions) -> DatabaseView | None:
        """`read_database`, or None when the database fails or does not answer within
        ANSWER_TIMEOUT: its gauges are then left out (smsc_bot_database_up says so), and what
        the bot counted itself is still shown, by /metrics and /status alike."""
        try:
            async with asyncio.timeout(health.ANSWER_TIMEOUT):
                view = await self.read_database(sessionmaker)
        except Exception as error:
            self._database.view = None
            if not self._database_failing:  # one line, not one per scrape
                log.warning(
                    "metrics: database read failed, its gauges left out error=%s",
                    health.failure(error),
                )
            self._database_failing = True
            return None
        if self._database_failing:
            log.info("metrics: database read again")
        self._database_failing = False
        return view

    async def render(self, sessionmaker: Sessions) -> bytes:
        """The Prometheus text exposition, the database read first (`read_database_within`)."""
        await self.read_database_within(sessionmaker)
        return self.render_registry()

    def render_registry(self) -> bytes:
        """The exposition of what is in the registry now (the gauges of the last read)."""
        return generate_latest(self.registry)
