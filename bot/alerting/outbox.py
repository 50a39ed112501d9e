"""Delivery of the outbox: every notification reaches its chat once, within Telegram's limits.

The bookkeeping lives here (what is due, pacing, sent / retry / give up); the call to Telegram
is the `Sender`'s (bot.telegram.sender), which turns each Bot API answer into a `Delivery`.
A notification is marked sent in the database as soon as Telegram accepts it, so after a
crash or restart only the unsent ones go out. Each fault gets one log line: 429 waits
`retry_after`; 5xx (JSON or HTML), network errors and anything unexpected back off with
jitter and retry, every retry an attempt until MAX_ATTEMPTS gives up; 400 gives up at once;
403 deactivates the chat; a group upgraded to a supergroup moves with its accounts to the new
id; 401/404 (the token revoked or wrong) pause sending - the session reports it and
bot.app stops the bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import logs
from bot.storage.chats import migrate_chat, set_active
from bot.storage.models import Notification

log = logging.getLogger(__name__)

# Telegram's documented limits: ~30 messages a second in all, ~1 a second to one chat,
# 20 a minute to one group.
MESSAGES_PER_SECOND = 30
PRIVATE_CHAT_GAP = 1.0
GROUP_CHAT_GAP = 3.0
MAX_ATTEMPTS = 12  # with doubling back-off from 2 s (capped at 5 min), about half an hour
FIRST_RETRY = 2.0
LONGEST_RETRY = 300.0
BATCH = 200
IDLE_POLL = 1.0  # how often to look for work due later when nobody wakes us


class Outcome(Enum):
    SENT = "sent"
    RETRY_AFTER = "retry after"  # 429: `retry_after` seconds
    TOKEN_REFUSED = "token refused"  # 401/404: nothing more can be sent
    MIGRATED = "migrated"  # the group is now the supergroup `migrated_to`
    CHAT_GONE = "chat gone"  # 403: blocked or removed
    THREAD_GONE = "thread gone"  # the forum topic was deleted
    REFUSED = "refused"  # 400: this message will never go
    FAILED = "failed"  # 5xx, network, codes no one expects: try again later


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    message_id: int | None = None
    retry_after: float = 0.0
    migrated_to: int | None = None
    error: str = ""  # what to log: the Bot API's description, never a secret


class Sender(Protocol):
    async def send(self, notification: Notification) -> Delivery:
        """One try at delivering `notification`; Telegram's answer as a `Delivery`. Anything
        raised is an unexpected failure, retried like FAILED."""
        ...


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
        concurrency: int = 8,
        writes: asyncio.Lock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`writes`: the turn the bot's background writers (checks, this outbox) take to write
        the database. SQLite has one writer, and one waiting for another sleeps and retries
        inside SQLite: with checks writing back to back through a sweep, the outbox could wait
        out busy_timeout ("database is locked") after Telegram accepted a message, and send it
        again. Waiting here instead is first come, first served, and costs no throughput."""
        self._sender = sender
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._now = now
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._chat_free_at: dict[int, float] = {}  # clock time a chat may get the next message
        self._next_send_at = 0.0  # clock time of the next send the global limit allows
        self._senders = asyncio.Semaphore(concurrency)
        self._writes = writes or asyncio.Lock()
        self._rng = rng or random.Random()
        self._task: asyncio.Task[None] | None = None
        self.paused = False  # the token was refused: nothing more is sent

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    def wake(self) -> None:
        self._wakeup.set()

    async def stop(self, grace: float | None = None) -> None:
        """Let the sends under way finish, for at most `grace` seconds; then they are
        cancelled and go out at the next start."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._task, grace)

    async def _run(self) -> None:
        while not self._stopping and not self.paused:
            try:
                busy = await self.deliver_pending()
            except Exception as error:  # the worker outlives any one bad pass
                log.error(
                    "outbox pass failed error=%r",
                    error,
                    exc_info=logs.traceback_due(("outbox pass", type(error))),
                )
                busy = False
            if not busy and not self._stopping:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL)

    async def deliver_pending(self) -> bool:
        """Send what is due and allowed now; True if anything was attempted."""
        if self.paused:
            return False
        async with self._sessionmaker() as session:
            pending = (
                await session.scalars(
                    select(Notification)
                    .where(
                        Notification.sent_at.is_(None),
                        Notification.failure.is_(None),
                        Notification.next_attempt_at <= self._now(),
                    )
                    .order_by(Notification.id)
                    .limit(BATCH)
                )
            ).all()
        now = self._clock()
        chosen: list[Notification] = []
        for notification in pending:
            if self._chat_free_at.get(notification.chat_id, 0.0) > now:
                continue  # this chat had its message for now; the others need not wait
            gap = PRIVATE_CHAT_GAP if notification.chat_id > 0 else GROUP_CHAT_GAP
            self._chat_free_at[notification.chat_id] = now + gap
            chosen.append(notification)
        if not chosen:
            return False
        await asyncio.gather(*(self._send(n) for n in chosen))
        return True

    async def _pace(self) -> None:
        """Wait for this send's place under MESSAGES_PER_SECOND. Called by a send that holds
        a sender slot, right before it goes out: places handed out before waiting for a slot
        would let the sends that waited go out together, faster than Telegram allows."""
        slot = max(self._clock(), self._next_send_at)
        self._next_send_at = slot + 1 / MESSAGES_PER_SECOND
        if slot > self._clock():
            await asyncio.sleep(slot - self._clock())

    async def _send(self, notification: Notification) -> None:
        try:
            # The slot covers the call to Telegram only: the bookkeeping below waits for its
            # turn to write, and the next sends need not wait for that.
            async with self._senders:
                await self._pace()
                delivery = await self._sender.send(notification)
        except Exception as error:
            log.error(
                "notification send failed id=%s attempt=%d error=%r",
                notification.id,
                notification.attempts + 1,
                error,
                exc_info=logs.traceback_due(("notification send", type(error))),
            )
            await self._retry(notification, delay=self._backoff(notification.attempts))
            return
        await self._record(notification, delivery)

    async def _record(self, notification: Notification, delivery: Delivery) -> None:
        chat_id, outcome = notification.chat_id, delivery.outcome
        if outcome is Outcome.SENT:
            await self._update(notification, sent_at=self._now(), message_id=delivery.message_id)
            log.info(
                "notification sent id=%s chat_id=%s kind=%s",
                notification.id,
                chat_id,
                notification.kind,
            )
        elif outcome is Outcome.RETRY_AFTER:
            self._chat_free_at[chat_id] = self._clock() + delivery.retry_after
            log.warning(
                "notification rate limited id=%s retry_after=%s",
                notification.id,
                delivery.retry_after,
            )
            await self._retry(notification, delay=delivery.retry_after)
        elif outcome is Outcome.TOKEN_REFUSED:
            # Not the notification's fault: it stays as it is, for a start with a good token.
            if not self.paused:
                log.error("sending paused: Telegram refused the bot token (%s)", delivery.error)
            self.paused = True
        elif outcome is Outcome.MIGRATED and delivery.migrated_to is not None:
            async with self._writes, self._sessionmaker() as session:
                await migrate_chat(session, chat_id, delivery.migrated_to)
            log.info("chat migrated from=%s to=%s", chat_id, delivery.migrated_to)
            self.wake()  # the notification now waits under the new id
        elif outcome is Outcome.CHAT_GONE:
            await self._chat_gone(chat_id)
        elif outcome is Outcome.THREAD_GONE:
            await self._drop_thread(notification)
        elif outcome is Outcome.REFUSED:
            log.error("notification refused id=%s error=%s", notification.id, delivery.error)
            await self._give_up(notification, "bad request")
        else:
            log.warning(
                "notification send failed id=%s attempt=%d error=%s",
                notification.id,
                notification.attempts + 1,
                delivery.error,
            )
            await self._retry(notification, delay=self._backoff(notification.attempts))

    def _backoff(self, attempts: int) -> float:
        """Doubling from FIRST_RETRY up to LONGEST_RETRY, jittered: notifications that failed
        together (an outage) do not all come back in the same second."""
        delay = min(FIRST_RETRY * 2.0**attempts, LONGEST_RETRY)
        return delay * self._rng.uniform(0.75, 1.25)

    async def _retry(self, notification: Notification, *, delay: float) -> None:
        attempts = notification.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.error("notification given up id=%s attempts=%d", notification.id, attempts)
            await self._give_up(notification, "too many failures")
            return
        next_attempt_at = self._now() + timedelta(seconds=delay)
        await self._update(notification, attempts=attempts, next_attempt_at=next_attempt_at)

    async def _give_up(self, notification: Notification, reason: str) -> None:
        await self._update(notification, failure=reason)

    async def _drop_thread(self, notification: Notification) -> None:
        # The forum topic was deleted: the chat itself still wants to know.
        await self._update(notification, thread_id=None)
        self.wake()

    async def _update(self, notification: Notification, **values: object) -> None:
        """Record what became of one notification, in the outbox's turn to write."""
        async with self._writes, self._sessionmaker() as session:
            await session.execute(
                update(Notification).where(Notification.id == notification.id).values(**values)
            )
            await session.commit()

    async def _chat_gone(self, chat_id: int) -> None:
        """The bot was blocked or removed: stop working for that chat."""
        async with self._writes, self._sessionmaker() as session:
            await session.execute(
                update(Notification)
                .where(
                    Notification.chat_id == chat_id,
                    Notification.sent_at.is_(None),
                    Notification.failure.is_(None),
                )
                .values(failure="chat unavailable")
            )
            await set_active(session, chat_id, False)
        log.info("chat inactive chat_id=%s reason=forbidden", chat_id)
