"""Jobs that run once a day for all processes together: every replica schedules them, and the
one that moves the job's day forward in `daily_runs` does the work."""

from __future__ import annotations

from sqlalchemy import insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import DailyRun


async def claim_day(session: AsyncSession, name: str, day: str) -> bool:
    """True for the one caller that claims `day` (an ISO date) for the job `name`; the claim
    is part of the session's transaction, so do the work in it and commit: a crash before the
    commit leaves the day unclaimed. A racing claim waits for that commit on the row's lock
    (or the key's, for the first run), then finds the day taken. False rolls the session back.
    """
    moved = await session.execute(
        update(DailyRun).where(DailyRun.name == name, DailyRun.day < day).values(day=day)
    )
    if moved.rowcount == 1:
        return True
    # No row yet, or the day is already taken: a racing first run fails on the primary key.
    try:
        await session.execute(insert(DailyRun).values(name=name, day=day))
    except IntegrityError:
        await session.rollback()
        return False
    return True
