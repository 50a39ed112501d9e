"""Someone takes an incident ("I'm on it"): once, whoever presses first on any replica."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting.pressed import pressed
from bot.alerting.queue import AlertQueue
from bot.storage.models import Account, Chat


async def acknowledge(
    session: AsyncSession,
    queue: AlertQueue,
    account: Account,
    user_id: int,
    user: str,
    message_id: int,
    now: datetime,
) -> bool:
    """`user` takes the account's open incident, if nobody has it yet (of two presses, on any
    replica, one wins): no more reminders for it, and its alert says so (and the message
    pressed, a reminder or an escalation, if another). False if it was taken, or none is open;
    the account tells by whom. Commits."""
    taken = await session.execute(
        update(Account)
        .where(
            Account.id == account.id,
            Account.alert_id.is_not(None),
            Account.acked_at.is_(None),
        )
        .values(acked_by=user, acked_by_id=user_id, acked_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(account)
    if taken.rowcount == 0:  # type: ignore[attr-defined]
        await session.commit()
        return False
    pressed_id = await pressed(session, account, message_id)
    chat = await session.get_one(Chat, account.chat_id)
    for target in dict.fromkeys([account.alert_id, pressed_id]):  # a reminder's too
        if target is not None:
            queue.edit(session, chat, account, "acked", target, keep_buttons=True)
    await queue.finish(session)
    await session.commit()
    return True
