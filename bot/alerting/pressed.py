"""The alert a button was pressed on, as the outbox sent it: "I'm on it" on a reminder or an
escalation shows on that message too, and a message Telegram withholds from the bot (an old
one: a callback then carries its chat and id only) is known by these records alone."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Account, Notification


@dataclass(frozen=True)
class Shown:
    """What a message of the outbox shows: its HTML text, and its keyboard as JSON."""

    text: str
    reply_markup: str | None


async def pressed(session: AsyncSession, account: Account, message_id: int) -> int | None:
    """The account's notification (an alert, a reminder, an escalation) sent as message
    `message_id` of its chat; None when the bot sent that message for no such thing."""
    return await session.scalar(
        select(Notification.id)
        .where(
            Notification.chat_id == account.chat_id,
            Notification.message_id == message_id,
            Notification.account_id == account.id,
            Notification.edit_of.is_(None),
            Notification.sent_at.is_not(None),
        )
        .order_by(Notification.id.desc())
        .limit(1)
    )


async def shown(session: AsyncSession, account: Account, message_id: int) -> Shown | None:
    """What that message of the account's shows now: its last edit sent (an acknowledge, the
    incident's end), else itself; None as for `pressed`."""
    notification = await pressed(session, account, message_id)
    if notification is None:
        return None
    edits = (Notification.edit_of == notification) & Notification.sent_at.is_not(None)
    latest = await session.execute(
        select(Notification.text, Notification.reply_markup)
        .where(or_(Notification.id == notification, edits))
        .order_by(Notification.id.desc())
        .limit(1)
    )
    text, reply_markup = latest.one()
    return Shown(text, reply_markup)
