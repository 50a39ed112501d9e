"""The scheduled checks' outcomes, queued as the checks end and written a batch at a time
(bot.alerting.scheduling asks, this writes).

Checks do not write side by side: each queues its outcome, and whichever takes the turn next
writes the outcomes waiting (up to WRITE_BATCH logins), its own included, in one transaction
(bot.alerting.outcomes). A sweep of thousands so costs a few transactions a second, not one
per login, and on SQLite leaves its one writer free most of the time for the handlers' commits.
On SQLite the turn is shared with the outbox and the claims too (`write_turn`); checks queue
among themselves first, so an alert's bookkeeping waits behind one write of checks, not behind
every check in flight. So do claims: queued behind the checks waiting to write, a sweep's next
claim waited 0.1-0.2 s while SMSC's slots ran dry.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alerting.monitoring import Monitor, Outcome
from bot.alerting.outbox import Outbox
from bot.alerting.outcomes import Claim, write_outcomes
from bot.storage.models import Account
from bot.storage.stats import held, held_values

log = logging.getLogger(__name__)

WRITE_BATCH = 50  # logins whose outcomes are written in one transaction, at most
# Seconds a check's write is held back, when no write is under way and fewer than WRITE_BATCH
# logins' outcomes wait: the checks ending about then go in the same write. Written as each
# ended, a sweep whose requests take 200 ms (its checks ending spread over seconds, not packed
# into one) made 113 writes of 9 logins where one at 50 ms made 20 of 50, each write's
# statements and commit and each wake-up from idle serving fewer accounts: ≈ 20 % more CPU an
# account. While a write is under way, the outcomes gather behind it anyway.
WRITE_LINGER = 0.05
_HELD = held(select(Account))

# When an account is next checked: after the gap given it and a retry-after, if any.
NextGap = Callable[[Any, float | None], timedelta]


class CheckWrites:
    """The outcomes waiting to be written, and the turn to write them (see the module)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        monitor: Monitor,
        outbox: Outbox,
        write_turn: AbstractAsyncContextManager[Any],
        *,
        now: Callable[[], datetime],
        next_gap: NextGap,
        alert_raised: Callable[[str], None],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._monitor = monitor
        self._outbox = outbox
        self._turn = asyncio.Lock()
        self._write_turn = write_turn
        self._now = now
        self._next_gap = next_gap
        self._alert_raised = alert_raised
        self._waiting: dict[Claim, Outcome] = {}

    async def write(self, claim: Claim, outcome: Outcome) -> None:
        """Queue the outcome of `claim` and see it written, with others waiting (unless
        another check's write takes it first)."""
        self._waiting[claim] = outcome
        if len(self._waiting) < WRITE_BATCH and not self._turn.locked():
            await asyncio.sleep(WRITE_LINGER)
        async with self._turn, self._write_turn:
            if claim not in self._waiting:
                return
            # A bounded batch: its accounts are worked through without a pause for other
            # tasks, and a thousand at once would hold handlers up for a noticeable moment.
            others = (c for c in self._waiting if c != claim)
            claims = [claim, *itertools.islice(others, WRITE_BATCH - 1)]
            outcomes = {c: self._waiting.pop(c) for c in claims}
            try:
                async with self._sessionmaker() as session:
                    notified, raised = await write_outcomes(
                        session, outcomes, self._monitor, self._now(), self._next_gap
                    )
            except Exception:
                log.exception("writing checks failed logins=%s", len(outcomes))
                await self._postpone(claims)
                return
        for kind in raised:
            self._alert_raised(kind)
        # Only then: an idle outbox woken by each check of a sweep looked for work hundreds
        # of times a second.
        if notified:
            self._outbox.wake()

    async def postpone(self, claims: list[Claim]) -> None:
        """After a failed check, come back at the usual interval, not at once, every second."""
        async with self._turn, self._write_turn:
            await self._postpone(claims)

    async def _postpone(self, claims: list[Claim]) -> None:
        # Callers hold the turns.
        try:
            async with self._sessionmaker() as session:
                postponed = await session.scalars(_HELD, held_values(claims))
                for account in postponed:
                    account.next_check_at = self._now() + self._next_gap(account, None)
                    account.lease_until = None
                await session.commit()
        except Exception as error:  # their leases run out, and they are taken again
            log.warning("postponing checks failed logins=%s error=%r", len(claims), error)
