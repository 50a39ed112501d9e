"""What becomes of each notification the outbox sent (bot.alerting.outbox): Telegram's answer
recorded as sent, as a retry after a back-off or a 429's wait, as its chat moved or its topic
dropped, or as given up. Each is kept by `Claims.record` and written by the outbox's next
flush, which also ends the notification's lease."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.alerting.claims import Claims, Outgoing
from bot.alerting.delivery import Delivery, Outcome

log = logging.getLogger(__name__)

# However long Telegram or the network is down, alerts wait and go out when it is back: each is
# retried (every 5 minutes once the back-off is at its cap) until it is a day old, as long as
# Telegram keeps an update for a webhook it cannot reach. One whose incident ended meanwhile is
# dropped as stale before that (bot.alerting.queue). Older, it is given up unsent, even on its
# first attempt (the bot was stopped for days): the balance it tells of is long out of date.
GIVE_UP_AFTER = timedelta(days=1)
# Kinds that are late sooner: a digest more than an hour late waits for the next day rather
# than come at an odd hour (bot.alerting.digest.GRACE), so one the outbox still holds an hour
# after it was queued is given up too. An edit is never late: it brings a message the chat has
# up to date (a "resolved" one takes its buttons off), however long it waited.
LATE_AFTER = {"digest": timedelta(hours=1)}
FIRST_RETRY = 2.0
LONGEST_RETRY = 300.0
RAISED_ATTEMPTS = 12  # a send that raised each time: ≈ 25 minutes of them


class Ledger:
    """The outbox's bookkeeping of its sends, on `now` (wall time) and `rng` (the jitter)."""

    def __init__(self, claims: Claims, *, now: Callable[[], datetime], rng: random.Random) -> None:
        self._claims = claims
        self._now = now
        self._rng = rng

    def late(self, notification: Outgoing, now: datetime) -> bool:
        """Too old to send (GIVE_UP_AFTER, LATE_AFTER): given up, with a line."""
        if notification.edit_of is not None:
            return False
        late_after = LATE_AFTER.get(notification.kind, GIVE_UP_AFTER)
        if now - notification.created_at <= late_after:
            return False
        log.error(
            "notification given up id=%s kind=%s queued_at=%s: too late to send",
            notification.id,
            notification.kind,
            notification.created_at.isoformat(timespec="seconds"),
        )
        self.give_up(notification, "too late")
        return True

    def raised(self, notification: Outgoing) -> None:
        """The send raised, with no answer of Telegram's (the sender turns its faults into
        outcomes): most likely this message's own fault, to raise again. Tried for a day it
        held the chat's later alerts back that long (a chat's go in order)."""
        if notification.attempts + 1 >= RAISED_ATTEMPTS:
            log.error("notification given up id=%s: its send raised", notification.id)
            self.give_up(notification, "send raised")
        else:
            self._retry(notification, delay=self._backoff(notification.attempts))

    async def answered(self, notification: Outgoing, delivery: Delivery) -> bool:
        """Record Telegram's answer (but a refused token, the outbox's to handle); True when
        the chat has a send due again at once (moved to its new id, or its topic dropped)."""
        chat_id, outcome = notification.chat_id, delivery.outcome
        if notification.edit_of is not None and outcome in (Outcome.REFUSED, Outcome.THREAD_GONE):
            # Too old to edit, deleted, not modified: the chat lost nothing.
            log.info(
                "notification edit skipped id=%s: %s", notification.id, delivery.error or outcome
            )
            self.give_up(notification, "not editable")
        elif outcome is Outcome.SENT:
            self._claims.record(notification, sent_at=self._now(), message_id=delivery.message_id)
            log.info(
                "notification sent id=%s chat_id=%s kind=%s",
                notification.id,
                chat_id,
                notification.kind,
            )
        elif outcome is Outcome.RETRY_AFTER:
            log.warning(
                "notification rate limited id=%s retry_after=%s",
                notification.id,
                delivery.retry_after,
            )
            # Telegram said when to come back: no attempt counted, no back-off.
            self._retry(notification, delay=delivery.retry_after, failed=False)
        elif outcome is Outcome.MIGRATED and delivery.migrated_to is not None:
            await self._claims.migrate(notification, delivery.migrated_to)
            log.info("chat migrated from=%s to=%s", chat_id, delivery.migrated_to)
            return True
        elif outcome is Outcome.CHAT_GONE:
            await self._claims.chat_gone(chat_id)
            log.info("chat inactive chat_id=%s reason=forbidden", chat_id)
        elif outcome is Outcome.THREAD_GONE:
            # The forum topic was deleted or closed: the chat itself still wants to know.
            self._claims.record(notification, thread_id=None)
            return True
        elif outcome is Outcome.REFUSED:
            log.error("notification refused id=%s error=%s", notification.id, delivery.error)
            self.give_up(notification, "bad request")
        else:
            log.warning(
                "notification send failed id=%s attempt=%d error=%s",
                notification.id,
                notification.attempts + 1,
                delivery.error,
            )
            self._retry(notification, delay=self._backoff(notification.attempts))
        return False

    def give_up(self, notification: Outgoing, reason: str) -> None:
        self._claims.record(notification, failure=reason)

    def _backoff(self, attempts: int) -> float:
        """Doubling from FIRST_RETRY up to LONGEST_RETRY, jittered: notifications that failed
        together (an outage) do not all come back in the same second."""
        delay = min(FIRST_RETRY * 2.0**attempts, LONGEST_RETRY)
        return delay * self._rng.uniform(0.75, 1.25)

    def _retry(self, notification: Outgoing, *, delay: float, failed: bool = True) -> None:
        """Again in `delay` seconds; a failure counts an attempt (the next back-off doubles)."""
        now = self._now()
        attempts = notification.attempts + int(failed)
        if now - notification.created_at >= GIVE_UP_AFTER:
            log.error(
                "notification given up id=%s queued_at=%s attempts=%d: undelivered for too long",
                notification.id,
                notification.created_at.isoformat(timespec="seconds"),
                attempts,
            )
            self.give_up(notification, "undelivered for a day")
            return
        next_attempt_at = now + timedelta(seconds=delay)
        self._claims.record(notification, attempts=attempts, next_attempt_at=next_attempt_at)
