"""Delivery of the outbox: every notification reaches its chat once, in order, within
Telegram's limits, however many processes share the database.

What is due and its claims live here; the call to Telegram
is the `Sender`'s (bot.alerting.delivery; aiogram's is bot.telegram.sender), which turns each
Bot API answer into a `Delivery`; the limits are the `Pacer`'s (bot.alerting.pacing). A
notification is claimed before it is sent: a conditional UPDATE sets its lease, so of several
replicas only one sends it, and if that one dies its lease runs out and another sends it. Only
a chat's oldest unsent notification is ever claimed, and not while it is leased or waits for
its retry, so a chat's messages keep their order across replicas, crashes and faults. The
outcome is recorded as soon as Telegram answers (with those of the sends answered while it was
being written), which also ends the lease: after a restart only the unsent ones go out, if not
too late to matter. What each answer leads to is the `Ledger`'s (bot.alerting.ledger), with
one log line a fault: 429 waits `retry_after`; 5xx (JSON or HTML), network errors and
anything unexpected count an attempt and back off with jitter; either is retried until the
notification is a day old; 400 gives up at once; 403 deactivates the chat; a group upgraded
to a supergroup moves with its accounts to the new id. 401/404 (the token revoked or wrong)
pause sending, here - the session reports it and bot.app stops the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.alerting.claims import Claims, Outgoing
from bot.alerting.delivery import Outcome, Sender
from bot.alerting.ledger import Ledger
from bot.alerting.pacing import MemoryPacer, Pacer, PacingUnavailable
from bot.storage.outage import unreachable

log = logging.getLogger(__name__)

BATCH = 200
IDLE_POLL = 1.0  # how often to look for work due later when nobody wakes us
# After a failed pass (the database away, say), each next one waits twice as long as the last,
# up to this: through an outage, a line every half minute where it was one every second.
FAILED_PASS_WAIT = 30.0
# Sends under way at once, at most: more than a group of places (pacing.PLACES_AT_ONCE), which
# goes out together, and the most that a process killed mid-send can leave to be sent again.
SENDS_AT_ONCE = 8


class Outbox:
    """The delivery worker: `start()` in the running loop, `wake()` after committing
    notifications, `stop()` to finish the sends under way and leave the rest for later."""

    def __init__(
        self,
        sender: Sender,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        concurrency: int = SENDS_AT_ONCE,
        pacer: Pacer | None = None,
        lease_seconds: float = 60,
        writes: asyncio.Lock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`pacer`: Telegram's limits, shared by all replicas (bot.fleet.pacing) or, if None,
        kept in memory on `clock` - for a process that sends alone, so the claims it finds at
        start are its own previous run's, killed mid-send: they are released at once instead
        of waiting out their lease. `lease_seconds`: how long a claim lasts, so how soon
        another replica takes over the sends of one that died.

        `writes`: on SQLite, the turn the bot's background writers (checks, this outbox) take
        to write. SQLite has one writer, and one waiting for another sleeps and retries inside
        SQLite: with checks writing back to back through a sweep, the outbox could wait out
        busy_timeout ("database is locked") after Telegram accepted a message, and send it
        again. Waiting here instead is first come, first served, and costs no throughput.
        None (PostgreSQL): no turns, the database orders concurrent writers itself."""
        self._sender = sender
        self._claims = Claims(sessionmaker, lease_seconds=lease_seconds, writes=writes)
        self._ledger = Ledger(self._claims, now=now, rng=rng or random.Random())
        self._now = now
        self._pacer: Pacer = pacer or MemoryPacer(clock=clock)
        self._leftover_claims = pacer is None  # released by the first pass of `start()`
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._senders = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self._pacing_down = False  # the pacer's store failed: said once, until it is back
        self._next_free: float | None = None  # the last pass's Taken.next_free
        self.paused = False  # the token was refused: nothing more is sent

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self, grace: float | None = None) -> None:
        """Claim and begin no more sends, and let those Telegram is answering finish (their
        answers recorded) for at most `grace` seconds; then they are cancelled, and go out
        (from here or another replica) once their lease has run out: perhaps a second time,
        if Telegram took the message. Those claimed but not begun are given back."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, grace)

    async def _run(self) -> None:
        # The claims' connection (Claims.held) is held for the loop's life, from the first pass
        # that gets it: its looks for work are then one trip each to aiosqlite's thread.
        async with contextlib.AsyncExitStack() as holding:
            held, failed = False, 0
            while not self._stopping and not self.paused:
                # Cleared before the pass, not after: a wake() while it runs (notifications
                # committed meanwhile) cuts the wait after it short.
                self._wakeup.clear()
                try:
                    if not held:
                        await holding.enter_async_context(self._claims.held())
                        held = True
                    if self._leftover_claims:
                        await self._claims.release_all()
                        self._leftover_claims = False
                    busy = await self.deliver_pending()
                except Exception as error:  # the worker outlives any one bad pass
                    failed += 1
                    pause = min(FAILED_PASS_WAIT, IDLE_POLL * 2 ** (failed - 1))
                    # The database away is said in one line (its passes back off); any other
                    # failure is a bug, its traceback worth a look.
                    bug = not unreachable(error)
                    log.error(
                        "outbox pass failed error=%r next_in=%.1fs",
                        error,
                        pause,
                        exc_info=bug and logs.traceback_due(("outbox pass", type(error))),
                    )
                    await self._wait(pause)
                    continue
                if failed:
                    log.info("outbox passes work again failed=%s", failed)
                    failed = 0
                if not busy and not self._stopping:
                    await self._wait(IDLE_POLL)

    async def _wait(self, longest: float) -> None:
        """Until woken, or the first held chat frees if that comes before `longest` (the
        chats freed with it a moment later still join its group of places: see JOIN)."""
        wait = longest if self._next_free is None else min(longest, self._next_free)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), wait)

    async def deliver_pending(self) -> bool:
        """Claim and send what is due and allowed now; True if anything was attempted."""
        self._next_free = None
        # First the outcomes a failed write left in memory: a sent mark unwritten when its
        # lease runs out is a message claimed and sent again. Not written, the pass ends here
        # (raises) before it could claim that very notification.
        await self._claims.flush()
        if self.paused:
            return False
        now = self._now()
        candidates = await self._claims.candidates(now, BATCH)
        if not candidates:
            return False
        taken = await self._paced(self._pacer.take([chat_id for _, chat_id in candidates]))
        if taken is None:
            return False
        self._next_free = taken.next_free
        chosen = [id_ for id_, chat_id in candidates if chat_id in taken.chats]
        if not chosen or self._stopping:
            return False
        claimed = await self._claims.claim(chosen, now)
        if not claimed:
            return False
        async with self._claims.held():
            try:
                due = [n for n in claimed if not self._ledger.late(n, now)]
                await asyncio.gather(*(self._send(n) for n in due))
            finally:  # a stop out of grace too: what Telegram accepted is written
                await self._claims.flush()
        return True

    async def _paced(self, call: Any) -> Any:
        """The pacer's answer, or None when its store is down: one warning per outage (over
        when a send gets its place again), and nothing goes out unpaced meanwhile (the pass
        ends, the next one retries)."""
        try:
            return await call
        except PacingUnavailable as error:
            if not self._pacing_down:
                log.warning("outbox pacing unavailable, sending waits error=%r", error)
            self._pacing_down = True
            return None

    async def _send(self, notification: Outgoing) -> None:
        """One attempt, its outcome written as soon as it is known: a sent mark committed
        later than needed would be a message sent twice if the bot died meanwhile."""
        await self._attempt(notification)
        await self._claims.flush()

    async def _attempt(self, notification: Outgoing) -> None:
        target = None
        if notification.edit_of is not None:
            # The message to edit: an older one of the same chat, so already sent or given up
            # (a chat's notifications go in order). None sent: nothing to edit, and no error.
            target = await self._claims.message_of(notification)
            if target is None:
                log.info("notification edit skipped id=%s: nothing to edit", notification.id)
                self._ledger.give_up(notification, "nothing to edit")
                return
        # The slot covers the call to Telegram only: the bookkeeping below waits for its turn
        # to write, and the next sends need not wait for that.
        async with self._senders:
            ready = await self._ready(notification)
            delivery = None
            if ready:
                try:
                    if target is None:
                        delivery = await self._sender.send(notification)
                    else:
                        delivery = await self._sender.edit(notification, target)
                except Exception as error:
                    log.error(
                        "notification send failed id=%s attempt=%d error=%r",
                        notification.id,
                        notification.attempts + 1,
                        error,
                        exc_info=logs.traceback_due(("notification send", type(error))),
                    )
        if not ready:
            self._claims.record(notification)  # given back for the next pass
            return
        # The chat's gap runs from Telegram's answer: however long this send waited for its
        # place, the chat's next message keeps the gap to it.
        retry_after = None
        if delivery is not None and delivery.outcome is Outcome.RETRY_AFTER:
            retry_after = delivery.retry_after
        await self._paced(self._pacer.hold(notification.chat_id, retry_after))
        if delivery is None:
            self._ledger.raised(notification)
        elif delivery.outcome is Outcome.TOKEN_REFUSED:
            # Not the notification's fault: it stays as it is, for a start with a good token.
            if not self.paused:
                log.error("sending paused: Telegram refused the bot token (%s)", delivery.error)
            self.paused = True
            self._claims.record(notification)
        elif await self._ledger.answered(notification, delivery):
            self.wake()

    async def _ready(self, notification: Outgoing) -> bool:
        """Wait for this send's place under the overall rate. Taken by a send that holds a
        sender slot, right before it goes out: places handed out before waiting for a slot
        would let the sends that waited go out together, faster than Telegram allows. A send
        whose place came late in its lease does not go: the lease could run out during the
        call, and another replica send it too. Nor does one that would begin after a stop:
        the stop waits only for the sends under way."""
        if self.paused or self._stopping:
            return False
        delay = await self._paced(self._pacer.place())
        if delay is None:
            return False
        if self._pacing_down:
            log.info("outbox pacing available again")
            self._pacing_down = False
        if delay > 0:
            await asyncio.sleep(delay)
        if self._stopping:
            return False
        lease_until = notification.lease_until
        return lease_until is not None and lease_until - self._now() > self._claims.lease / 2
