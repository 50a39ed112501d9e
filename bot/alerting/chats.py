"""A chat's settings: how the chat as a whole is told things. Each change is saved at once."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting import quiet, reminders
from bot.alerting.monitoring import Monitor
from bot.storage.chats import LANGUAGES
from bot.storage.models import Account, AccountState, Chat

MAX_MARGIN_PERCENT = 50
MAX_ANOMALY_FACTOR = 100


class ChatService:
    """Chat settings over one database session; knows nothing of Telegram. A setting out of
    its range raises ValueError and changes nothing."""

    def __init__(self, session: AsyncSession, monitor: Monitor) -> None:
        self._session = session
        self._monitor = monitor

    async def get(self, chat_id: int) -> Chat | None:
        return await self._session.get(Chat, chat_id)

    async def reactivate(self, chat_id: int) -> bool:
        """The bot can reach the chat again (unblocked, or added back to the group); True when
        it could not, and the accounts in trouble were alerted again (see Monitor.reactivate)."""
        back = await self._monitor.reactivate(self._session, chat_id)
        await self._session.commit()
        return back

    async def set_language(self, chat: Chat, language: str) -> None:
        if language not in LANGUAGES:
            raise ValueError("unknown language")
        chat.language = language
        await self._session.commit()

    async def set_reminders(self, chat: Chat, hours: int) -> None:
        """The first reminder while a balance stays low after `hours`; 0: no reminders.
        Accounts low already have their next reminder moved to the new schedule (see
        reminders.rescheduled): a shorter setting brings it sooner, at their next check if
        that is past, a longer one later; those that went low while reminders were off are
        reminded `hours` after they went low."""
        old_hours, chat.reminder_hours = chat.reminder_hours, hours
        if hours and hours != old_hours:
            low = select(Account).where(
                Account.chat_id == chat.id, Account.state == AccountState.LOW
            )
            now = datetime.now(UTC)
            for account in await self._session.scalars(low):
                account.next_reminder_at = reminders.rescheduled(account, old_hours, hours, now)
        await self._session.commit()

    async def set_escalation(self, chat: Chat, minutes: int | None, targets: list[str]) -> None:
        """An alert nobody takes within `minutes` is followed up once, mentioning `targets`
        ("@username"s, or ["admins"]); None: no escalation."""
        chat.escalate_minutes = minutes
        chat.escalate_to = json.dumps(targets) if minutes is not None else None
        await self._session.commit()

    async def set_margin(self, chat: Chat, percent: Decimal) -> None:
        """How far above its threshold a low balance must rise to count as restored."""
        if not 0 <= percent <= MAX_MARGIN_PERCENT:
            raise ValueError("margin out of range")
        chat.hysteresis_percent = percent
        await self._session.commit()

    async def set_anomaly(self, chat: Chat, factor: Decimal, minimum: Decimal) -> None:
        """Warn when a day costs `factor` times the week's daily average and at least `minimum`."""
        if not 1 < factor <= MAX_ANOMALY_FACTOR:
            raise ValueError("factor out of range")
        chat.anomaly_factor, chat.anomaly_minimum = factor, minimum
        await self._session.commit()

    async def stop_anomalies(self, chat: Chat) -> None:
        chat.anomaly_minimum = None  # the factor stays for the next /anomaly
        await self._session.commit()

    async def set_digest(self, chat: Chat, time: str | None, thread_id: int | None = None) -> None:
        """The daily digest at `time` ("HH:MM", the chat's zone) in forum topic `thread_id`
        (None: General), or none; the digests' job reads it at its next minute."""
        chat.digest_time = time
        chat.digest_thread_id = thread_id
        await self._session.commit()

    async def set_quiet_hours(self, chat: Chat, span: str | None) -> None:
        """Alerts come silently, but critical ones and escalations, during `span`
        ("HH:MM-HH:MM" in the chat's zone, perhaps across midnight), or never (None)."""
        chat.quiet_hours = None if span is None else quiet.parse(span)
        await self._session.commit()

    async def set_timezone(self, chat: Chat, zone: str) -> None:
        """`zone` is a name from the zone database; the digest moves with it."""
        chat.timezone = zone
        await self._session.commit()
