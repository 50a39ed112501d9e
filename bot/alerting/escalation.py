"""Escalation's bookkeeping: which open incidents nobody took in time, and claiming each one's
single follow-up (the job and its words are bot.telegram.escalation's).

An incident is due when its alert went out at least the chat's escalate_minutes ago and
nobody acknowledged or snoozed it. The claim is a conditional UPDATE setting escalated_at
where it is still NULL, in the transaction that queues the follow-up: of several replicas one
escalates, once per incident.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.models import Account, Chat, Notification

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Due:
    account: Account
    chat: Chat
    alert_id: int  # the incident's alert: the claim holds only while it is still open


def not_muted(now: datetime) -> ColumnElement[bool]:
    """A muted account tells the chat nothing, escalations included (bot.alerting.queue)."""
    return or_(Account.muted_until.is_(None), Account.muted_until <= now)


class EscalationStore:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._sessionmaker = sessionmaker
        self.now = now

    async def due(self) -> list[Due]:
        """Open incidents nobody took, not snoozed nor escalated, whose alert went out at
        least the chat's escalate_minutes ago: one query over the chats that escalate at all,
        their minutes compared here (SQL has no portable interval arithmetic). A database
        failure is one line, and none is due: the next minute tries again."""
        now = self.now()
        try:
            async with self._sessionmaker() as session:
                rows = await session.execute(
                    select(Account, Chat, Notification.sent_at)
                    .join(Chat, Chat.id == Account.chat_id)
                    .join(Notification, Notification.id == Account.alert_id)
                    .where(
                        Chat.escalate_minutes.is_not(None),
                        Chat.active.is_(True),
                        Account.acked_at.is_(None),
                        Account.escalated_at.is_(None),
                        Account.snoozed_until.is_(None),  # a snooze: someone saw it
                        not_muted(now),
                        Notification.sent_at.is_not(None),
                        Notification.sent_at <= now - timedelta(minutes=1),
                    )
                )
                candidates = rows.all()
        except (SQLAlchemyError, OSError) as error:
            log.warning("escalations: database unavailable (%s); next minute", type(error).__name__)
            return []
        return [
            Due(account, chat, account.alert_id)
            for account, chat, sent_at in candidates
            if sent_at + timedelta(minutes=chat.escalate_minutes) <= now
        ]

    async def escalate(self, due: Due, text: str, reply_markup: str | None) -> bool:
        """Claim the incident's one escalation and queue it (it always rings), in one
        transaction; False if another replica, an acknowledge, a snooze or the incident's end
        came first."""
        account, now = due.account, self.now()
        try:
            async with self._sessionmaker() as session:
                claimed = await session.execute(
                    update(Account)
                    .where(
                        Account.id == account.id,
                        Account.alert_id == due.alert_id,
                        Account.acked_at.is_(None),
                        Account.escalated_at.is_(None),
                        Account.snoozed_until.is_(None),
                        not_muted(now),
                    )
                    .values(escalated_at=now)
                )
                if claimed.rowcount == 0:  # type: ignore[attr-defined]
                    await session.rollback()
                    return False
                session.add(
                    Notification(
                        chat_id=account.chat_id,
                        thread_id=account.thread_id,
                        account_id=account.id,
                        kind="escalation",
                        text=text,
                        reply_markup=reply_markup,
                        silent=False,
                        created_at=now,
                        next_attempt_at=now,
                    )
                )
                await session.commit()
        except (SQLAlchemyError, OSError) as error:
            log.warning("escalations: database unavailable (%s); next minute", type(error).__name__)
            return False
        log.info("incident escalated account_id=%s chat_id=%s", account.id, account.chat_id)
        return True
