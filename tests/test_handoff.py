"""The hand-off store: single use, bound to its user, limited in time, safe between replicas."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.storage import handoff
from bot.storage.chats import ensure_chat
from bot.storage.handoff import HandoffRefused, Refusal
from bot.storage.models import Handoff

GROUP, USER, OTHER = -100500, 5, 6
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def payload(sessionmaker) -> str:
    async with sessionmaker() as session:
        await ensure_chat(session, GROUP, "supergroup", "Ops", "en")
        return await handoff.create(session, USER, GROUP, 7, NOW)


async def consume(sessionmaker, payload, user_id=USER, now=NOW):
    async with sessionmaker() as session:
        return await handoff.consume(session, payload, user_id, now)


async def refusal(sessionmaker, payload, **kwargs) -> Refusal:
    with pytest.raises(HandoffRefused) as caught:
        await consume(sessionmaker, payload, **kwargs)
    return caught.value.reason


async def test_works_once_for_its_user(sessionmaker, payload):
    assert await refusal(sessionmaker, payload, user_id=OTHER) == Refusal.OTHER_USER
    ticket = await consume(sessionmaker, payload)
    assert (ticket.chat_id, ticket.thread_id, ticket.user_id) == (GROUP, 7, USER)
    assert await refusal(sessionmaker, payload) == Refusal.USED


async def test_expires_after_15_minutes(sessionmaker, payload):
    late = NOW + handoff.LIFETIME
    assert await refusal(sessionmaker, payload, now=late) == Refusal.EXPIRED
    ticket = await consume(sessionmaker, payload, now=late - timedelta(seconds=1))
    assert ticket.used_at is not None


@pytest.mark.parametrize("made_up", ["add_-100500_0", "add_" + "A" * 32, "add_x", "other"])
async def test_made_up_payloads_are_unknown(sessionmaker, payload, made_up):
    assert await refusal(sessionmaker, made_up) == Refusal.UNKNOWN


async def test_two_openings_at_once_one_wins(sessionmaker, payload):
    results = await asyncio.gather(
        consume(sessionmaker, payload), consume(sessionmaker, payload), return_exceptions=True
    )
    assert sorted(type(result).__name__ for result in results) == ["Handoff", "HandoffRefused"]


async def test_expired_links_are_cleared_when_new_ones_are_made(sessionmaker, payload):
    async with sessionmaker() as session:
        await handoff.create(session, USER, GROUP, None, NOW + handoff.LIFETIME)
        assert await session.scalar(select(func.count()).select_from(Handoff)) == 1
