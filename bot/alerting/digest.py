"""The daily digest: at a chat's chosen local time, one quiet message about all its accounts.

One job every minute on the shared scheduler finds the chats whose digest time has come and
queues their digests through the outbox like any alert. Every replica of a fleet runs it; a
chat's day is claimed with a conditional UPDATE of `Chat.digest_sent_on` in the transaction
that queues the digest, so exactly one replica queues it, and a crash before the commit leaves
it for the next minute. /digest and /tz only change the chat's row: the next tick reads it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alerting import forecast
from bot.alerting.events import DigestContent, DigestEntry, Renderer
from bot.alerting.mutes import MuteEnds
from bot.alerting.outbox import Outbox
from bot.storage.history import Sample, histories_across
from bot.storage.models import Account, Chat, Notification

log = logging.getLogger(__name__)

# A digest late by up to this much (the bot was down, the database busy) is still sent that
# day; later, it waits for the next day rather than arrive at an odd hour.
GRACE = timedelta(hours=1)
# How far a chat's last digest day may lie after the day due now: a /tz across the date line
# (UTC+14 to UTC-12 is 26 hours) moves the chat's date back by up to two days. One later still
# was claimed by a clock set wrong ahead, since stepped back: counted as sent, it would stop
# the digests for as long as the step.
AHEAD = timedelta(days=2)


def due_day(digest_time: str, zone: str, now: datetime) -> date | None:
    """The chat's local date whose digest is due at `now`: its time has come, at most GRACE
    ago (today's, or yesterday's just before midnight); None when no digest is due."""
    tz = ZoneInfo(zone)
    hour, minute = (int(part) for part in digest_time.split(":"))
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1)):
        at = datetime.combine(day, time(hour, minute), tz)
        if at <= now:
            return day if now - at <= GRACE else None
    return None


def unsent(day: date, sent_on: str | None) -> bool:
    """Whether the digest of the chat's `day` is still to go: no digest of that day or a later
    one went out (ISO dates compare as text). Not merely another day: moved from 00:30 to 23:45
    just after it went out, a digest was due again at once for yesterday. A chat whose /tz
    moves its date back (across the date line) so skips the day it had already, not repeats it.
    `send` asks the same in SQL (`_claimable`)."""
    return sent_on is None or sent_on < day.isoformat() or sent_on > (day + AHEAD).isoformat()


def _claimable(day: date) -> ColumnElement[bool]:
    """`unsent`, of a chat's row."""
    return or_(
        Chat.digest_sent_on.is_(None),
        Chat.digest_sent_on < day.isoformat(),
        Chat.digest_sent_on > (day + AHEAD).isoformat(),
    )


class Digests:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        renderer: Renderer,
        outbox: Outbox,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self._renderer = renderer
        self._outbox = outbox
        self._now = now
        self._mute_ends = MuteEnds(sessionmaker, renderer, now=now)

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        """The minute's job: a digest goes out within a minute of its time."""
        scheduler.add_job(
            self.tick,
            CronTrigger(minute="*", timezone=UTC),
            id="digests",
            replace_existing=True,
            coalesce=True,
            max_instances=1,
        )

    async def tick(self) -> None:
        """Queue every digest that is due; a database failure is one line, and the next
        minute tries again (within the grace)."""
        try:
            if await self._mute_ends.tick():  # the same minute's job: see bot.alerting.mutes
                self._outbox.wake()
            for chat_id, day in await self.due():
                if await self.send(chat_id, day):
                    self._outbox.wake()  # sent while the next digests are composed
        except (SQLAlchemyError, OSError) as error:
            log.warning("digests: database unavailable (%s); next minute", type(error).__name__)

    async def due(self) -> list[tuple[int, date]]:
        """Chats whose digest is due, with the day to claim: one narrow query over the chats
        with a digest, filtered here, where each chat's zone is known (SQL has no portable
        zone arithmetic); zones and times repeat, so each pair is worked out once a tick."""
        now = self._now()
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Chat.id, Chat.digest_time, Chat.timezone, Chat.digest_sent_on).where(
                    Chat.digest_time.is_not(None), Chat.active.is_(True)
                )
            )
            candidates = rows.all()
        days: dict[tuple[str, str], date | None] = {}
        due = []
        for chat_id, digest_time, zone, sent_on in candidates:
            key = (digest_time, zone)
            if key not in days:
                days[key] = due_day(digest_time, zone, now)
            day = days[key]
            if day is not None and unsent(day, sent_on):
                due.append((chat_id, day))
        return due

    async def send(self, chat_id: int, day: date) -> bool:
        """Claim the chat's `day` and queue its digest in one transaction; True when a digest
        was queued, False when another process claimed the day first, the chat turned its
        digest off meanwhile, or it has no accounts."""
        day_text = day.isoformat()
        async with self._sessionmaker() as session:
            # The claim first: on SQLite it takes the write lock before anything is read.
            claimed = await session.execute(
                update(Chat)
                .where(
                    Chat.id == chat_id,
                    Chat.active.is_(True),
                    Chat.digest_time.is_not(None),
                    _claimable(day),
                )
                .values(digest_sent_on=day_text)
            )
            if claimed.rowcount != 1:
                return False
            chat = await session.get(Chat, chat_id)
            messages = await self.compose(session, chat)
            # One message where it fits, more (in order) for a chat with many accounts; none
            # for a chat without accounts, whose day is claimed all the same.
            session.add_all(
                Notification(
                    chat_id=chat.id,
                    thread_id=chat.digest_thread_id,
                    kind="digest",
                    text=text,
                    silent=True,
                    next_attempt_at=self._now(),
                )
                for text in messages
            )
            await session.commit()
        if messages:
            log.info("digest queued chat_id=%s", chat_id)
        return bool(messages)

    async def compose(self, session: AsyncSession, chat: Chat) -> list[str]:
        """The digest's messages: none for a chat without accounts."""
        accounts = (
            await session.scalars(
                select(Account).where(Account.chat_id == chat.id).order_by(Account.name)
            )
        ).all()
        if not accounts:
            return []
        now = self._now()
        day = now - timedelta(days=1)
        # From the sample before the day too: its move into the day counts for its share.
        histories = await histories_across(session, [account.id for account in accounts], day)
        entries = [
            DigestEntry(account, _spent(histories.get(account.id, []), day, now))
            for account in accounts
        ]
        return self._renderer.digest(DigestContent(entries, now, chat.timezone, chat.language))


def _spent(history: list[Sample], day: datetime, now: datetime) -> Decimal | None:
    """The day's spend; None without a reading in the day: a spend of 0 there said nothing
    went, of an account that could not be checked for days."""
    if not any(sample.taken_at > day for sample in history):
        return None
    return forecast.spend_between(history, day, now)
