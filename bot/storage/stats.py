"""What the database says about the bot as a whole, for metrics, health and /status."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Account, AccountState, Chat, Notification

PENDING = Notification.sent_at.is_(None) & Notification.failure.is_(None)


async def count_accounts(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(Account.id))) or 0


async def count_active_chats(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(Chat.id)).where(Chat.active.is_(True))) or 0


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many notifications wait, and when the oldest of them was queued."""
    count, oldest = (
        await session.execute(
            select(func.count(Notification.id), func.min(Notification.created_at)).where(PENDING)
        )
    ).one()
    return count, oldest


async def watched_balances(
    session: AsyncSession,
) -> Sequence[Row[tuple[str, str | None, str, int, Decimal, Decimal | None, Decimal | None]]]:
    """(name, login, site, chat_id, balance, credit, spend rate) of each checked account of
    an active chat."""
    rows = await session.execute(
        select(
            Account.name,
            Account.login,
            Account.site,
            Account.chat_id,
            Account.last_balance,
            Account.last_credit,
            Account.spend_rate,
        )
        .join(Chat, Chat.id == Account.chat_id)
        .where(Chat.active.is_(True), Account.last_balance.is_not(None))
        .order_by(Account.id)
    )
    return rows.all()


async def deliveries_after(
    session: AsyncSession, after: datetime
) -> Sequence[Row[tuple[datetime, datetime]]]:
    """(queued, sent) of each notification sent after `after`."""
    rows = await session.execute(
        select(Notification.created_at, Notification.sent_at).where(Notification.sent_at > after)
    )
    return rows.all()


def checkable(query):
    """Accounts of active chats whose credentials SMSC has not refused."""
    return query.join(Chat, Chat.id == Account.chat_id).where(
        Chat.active.is_(True),
        ~((Account.state == AccountState.CANT_CHECK) & (Account.last_error == "auth")),
    )


async def due_summary(session: AsyncSession, now: datetime) -> tuple[int | None, datetime | None]:
    """The shortest check interval among the accounts due now, and since when the first of
    them is due; (None, None) when none is."""
    query = select(func.min(Account.check_interval), func.min(Account.next_check_at))
    due = await session.execute(checkable(query).where(Account.next_check_at <= now))
    shortest, due_since = due.one()
    return shortest, due_since
