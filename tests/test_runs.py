"""Daily jobs claimed once for all processes: a lost race changes nothing, and leaves nothing
behind that could stall the bot."""

import asyncio
import gc
import time

from bot.storage.engine import create_engine, create_sessionmaker
from bot.storage.runs import claim_day
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def test_a_lost_claim_leaves_nothing_that_stalls_the_next_race(sessionmaker, database_url):
    # A lost claim used to be a failed INSERT, whose cursor the garbage collector froze the
    # bot with on SQLite (see bot.storage.engine.upsert): here it collects mid-race.
    other = create_sessionmaker(create_engine(database_url))  # another replica's connections
    gc.disable()  # the collection comes where it hurts, not earlier
    try:
        async with sessionmaker() as first, other() as second:
            assert await claim_day(first, "job", "2026-12-01")
            await first.commit()
            assert not await claim_day(second, "job", "2026-12-01")
        async with sessionmaker() as winner, other() as loser:
            assert await claim_day(winner, "job", "2026-12-02")  # holds the write
            racing = asyncio.create_task(claim_day(loser, "job", "2026-12-02"))
            await asyncio.sleep(0.2)  # the racing claim now waits for the winner's commit
            started = time.monotonic()
            gc.collect()
            await winner.commit()
            assert not await racing
            assert time.monotonic() - started < 2
    finally:
        gc.enable()
        await other.kw["bind"].dispose()


async def test_the_next_day_is_claimed_once(sessionmaker):
    async with sessionmaker() as session:
        assert await claim_day(session, "job", "2026-12-01")
        await session.commit()
    async with sessionmaker() as session:
        assert not await claim_day(session, "job", "2026-12-01")
        assert not await claim_day(session, "job", "2026-11-30")  # never back
        assert await claim_day(session, "job", "2026-12-02")
        await session.commit()
