"""The daily digest: at a chat's chosen local time, one quiet message about all its accounts.

Each chat with a digest has a cron job on the shared scheduler, rebuilt from the chats table
at start and changed by /digest and /tz. The digest goes through the outbox like any alert.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alerting import forecast
from bot.alerting.events import DigestContent, DigestEntry, Renderer
from bot.alerting.outbox import Outbox
from bot.storage.history import histories_since
from bot.storage.models import Account, Chat, Notification

log = logging.getLogger(__name__)


def trigger(digest_time: str, timezone: str) -> CronTrigger:
    hour, minute = (int(part) for part in digest_time.split(":"))
    return CronTrigger(hour=hour, minute=minute, timezone=ZoneInfo(timezone))


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
        self._scheduler: AsyncIOScheduler | None = None

    async def schedule_all(self, scheduler: AsyncIOScheduler) -> None:
        self._scheduler = scheduler
        async with self._sessionmaker() as session:
            chats = (
                await session.scalars(
                    select(Chat).where(Chat.digest_time.is_not(None), Chat.active.is_(True))
                )
            ).all()
        for chat in chats:
            self.schedule(chat)

    def schedule(self, chat: Chat) -> None:
        """(Re)schedule or cancel the chat's digest after its time or zone changed."""
        job_id = f"digest:{chat.id}"
        if self._scheduler is None:
            return
        if chat.digest_time is None:
            if self._scheduler.get_job(job_id):
                self._scheduler.remove_job(job_id)
            return
        self._scheduler.add_job(
            self.send,
            trigger(chat.digest_time, chat.timezone),
            args=[chat.id],
            id=job_id,
            replace_existing=True,
            misfire_grace_time=3600,  # late is better than never, within the hour
        )

    async def send(self, chat_id: int) -> None:
        async with self._sessionmaker() as session:
            chat = await session.get(Chat, chat_id)
            if chat is None or not chat.active or chat.digest_time is None:
                return
            messages = await self.compose(session, chat)
            if not messages:
                return
            # One message where it fits, more (in order) for a chat with many accounts.
            session.add_all(
                Notification(
                    chat_id=chat.id,
                    kind="digest",
                    text=text,
                    silent=True,
                    next_attempt_at=self._now(),
                )
                for text in messages
            )
            await session.commit()
        self._outbox.wake()
        log.info("digest queued chat_id=%s", chat_id)

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
        histories = await histories_since(session, [account.id for account in accounts], day)
        entries = [
            DigestEntry(
                account,
                None
                if account.last_balance is None
                else forecast.spend_between(histories.get(account.id, []), day, now),
            )
            for account in accounts
        ]
        return self._renderer.digest(DigestContent(entries, now, chat.timezone, chat.language))
