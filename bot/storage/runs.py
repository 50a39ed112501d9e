"""Jobs that run once a day for all processes together: every replica schedules them, and the
one that moves the job's day forward in `daily_runs` does the work."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.engine import upsert
from bot.storage.models import DailyRun


async def claim_day(session: AsyncSession, name: str, day: str) -> bool:
    """True for the one caller that claims `day` (an ISO date) for the job `name`; the claim
    is part of the session's transaction, so do the work in it and commit: a crash before the
    commit leaves the day unclaimed. A racing claim waits for that commit on the row's lock
    (or the key's, for the first run), then finds the day taken and changes nothing."""
    claim = upsert(session.bind.dialect.name, DailyRun).values(name=name, day=day)
    claim = claim.on_conflict_do_update(
        index_elements=[DailyRun.name],
        set_={"day": claim.excluded.day},
        where=DailyRun.day < claim.excluded.day,
    )
    return (await session.execute(claim)).rowcount == 1
