"""A chat the bot can reach again: it unblocked the bot, or added it back to the group. While
it could not, the outbox gave its alerts up (bot.alerting.claims.Claims.chat_gone) and its
accounts kept their state, so a balance still low went unheard until its next reminder (hours
away, or never with reminders off): each account still in trouble is alerted afresh."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting.claims import UNSENT
from bot.alerting.queue import AlertQueue
from bot.storage.models import Account, AccountState, Chat, Notification


async def reactivate(session: AsyncSession, queue: AlertQueue, chat_id: int) -> bool:
    """The chat active again; True if it was not. Then each account low or that can't be
    checked gets its alert again ("low", "critical" or "cant_check", with the usual buttons):
    a new incident, to take and to escalate. None for an account muted, in force or ended
    unsaid (the mute's end says its state, with those buttons: bot.alerting.mutes), nor for
    one whose alert is still waiting to go. Queued in the caller's transaction with the
    chat's change, a conditional UPDATE: of two updates saying so, one alerts."""
    back = await session.execute(
        update(Chat)
        .where(Chat.id == chat_id, Chat.active.is_(False))
        .values(active=True)
        .execution_options(synchronize_session=False)
    )
    if back.rowcount != 1:  # type: ignore[attr-defined]
        return False
    chat = await session.get_one(Chat, chat_id, populate_existing=True)
    waiting = select(Notification.id).where(Notification.id == Account.alert_id, *UNSENT)
    troubled = await session.scalars(
        select(Account)
        .where(
            Account.chat_id == chat_id,
            Account.state.in_([AccountState.LOW, AccountState.CANT_CHECK]),
            Account.muted_until.is_(None),
            ~waiting.exists(),
        )
        .order_by(Account.name)
    )
    for account in troubled.all():
        queue.add(session, chat, account, _opening(account), buttons=True)
    await queue.finish(session)
    return True


def _opening(account: Account) -> str:
    if account.state == AccountState.CANT_CHECK:
        return "cant_check"
    return "low" if account.critical_since is None else "critical"
