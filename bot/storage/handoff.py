"""Single-use links that move a group's /add to a private chat, so the password never enters
the group.

The deep link is seen by everyone in the group, so its payload proves nothing: it is only a
random reference to a row that binds it to the user who asked, the group and its topic, for
15 minutes, once. Rows live in the database so a link survives a restart and works whichever
replica receives it.
"""

from __future__ import annotations

import enum
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Handoff

LIFETIME = timedelta(minutes=15)
PREFIX = "add_"
# token_urlsafe(24): 32 characters of A-Z a-z 0-9 _ -, what a /start payload may carry.
PAYLOAD = re.compile(PREFIX + r"([A-Za-z0-9_-]{32})")


class Refusal(enum.Enum):
    UNKNOWN = "unknown"  # malformed, never issued, or its group is gone
    OTHER_USER = "other_user"
    USED = "used"
    EXPIRED = "expired"


class HandoffRefused(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


async def create(
    session: AsyncSession, user_id: int, chat_id: int, thread_id: int | None, now: datetime
) -> str:
    """A new link payload for `user_id` to continue /add for `chat_id` in private."""
    await session.execute(delete(Handoff).where(Handoff.expires_at <= now))
    token = secrets.token_urlsafe(24)
    session.add(
        Handoff(
            token=token,
            user_id=user_id,
            chat_id=chat_id,
            thread_id=thread_id,
            expires_at=now + LIFETIME,
        )
    )
    await session.commit()
    return PREFIX + token


async def consume(session: AsyncSession, payload: str, user_id: int, now: datetime) -> Handoff:
    """The hand-off a payload refers to, used up by this call; HandoffRefused, with nothing
    changed, if it is not this user's or no longer valid."""
    match = PAYLOAD.fullmatch(payload)
    if match is None:
        raise HandoffRefused(Refusal.UNKNOWN)
    token = match.group(1)
    # One conditional UPDATE: of two replicas opening the same link, only one wins.
    taken = await session.execute(
        update(Handoff)
        .where(
            Handoff.token == token,
            Handoff.user_id == user_id,
            Handoff.used_at.is_(None),
            Handoff.expires_at > now,
        )
        .values(used_at=now)
    )
    await session.commit()
    handoff = await session.get(Handoff, token)
    if taken.rowcount == 1:
        return handoff
    if handoff is None:
        raise HandoffRefused(Refusal.UNKNOWN)
    if handoff.user_id != user_id:  # told first: others learn nothing of its state
        raise HandoffRefused(Refusal.OTHER_USER)
    raise HandoffRefused(Refusal.USED if handoff.used_at is not None else Refusal.EXPIRED)
