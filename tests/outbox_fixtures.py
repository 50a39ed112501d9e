"""The outbox's tests against the fake Bot API (a pytest plugin: tests/conftest.py): the outbox
on the injected clock, sending through the module's `bot` (`api_bot` bound so), the refused
tokens it reports, the notifications queued, stored and settled, and a sender that records
sends and edits (`FakeSender`)."""

import random

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select

from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.outbox import Outbox
from bot.storage.models import Chat, Notification
from bot.telegram.sender import TelegramSender
from bot.telegram.session import TelegramSession
from tests.alerting_fixtures import START, Clock
from tests.bot_process import TOKEN

GROUP, PRIVATE = -100200, 300


class MonotonicClock:
    """Seconds on the injected wall clock, for the outbox's pacing."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return (self.clock.now - START).total_seconds()


@pytest.fixture
def refusals():
    return []


@pytest.fixture
async def api_bot(telegram, refusals):
    """The outbox tests' `bot`, a real Bot on the fake Bot API, which each of their modules binds
    (`bot = api_bot`): the handlers' `bot` (tests/handler_fixtures.py) is every other test's."""
    session = TelegramSession(
        api=TelegramAPIServer.from_base(telegram.url), on_token_refused=refusals.append
    )
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
def outbox(bot, sessionmaker, clock):
    return Outbox(
        TelegramSender(bot),
        sessionmaker,
        clock=MonotonicClock(clock),
        now=clock,
        rng=random.Random(1),
    )


async def queue(sessionmaker, clock, chat_id, count=1, kind="low", **fields) -> list[int]:
    async with sessionmaker() as session:
        if await session.get(Chat, chat_id) is None:
            chat_type = "private" if chat_id > 0 else "supergroup"
            session.add(Chat(id=chat_id, type=chat_type, language="en"))
        notes = [
            Notification(
                chat_id=chat_id,
                kind=kind,
                text=f"alert {i}",
                created_at=clock.now,
                next_attempt_at=clock.now,
                **fields,
            )
            for i in range(count)
        ]
        session.add_all(notes)
        await session.commit()
        return [n.id for n in notes]


async def stored(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        return (await session.scalars(select(Notification).order_by(Notification.id))).all()


async def settle(outbox, clock, seconds=60):
    """Passes of the worker while the injected clock runs `seconds` forward."""
    for _ in range(seconds * 2):
        await outbox.deliver_pending()
        clock.advance(seconds=0.5)


class FakeSender:
    """Records sends and edits; `edit_answers` are the next edits' outcomes (else SENT)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int | None]] = []  # (what, notification, message)
        self.edit_answers: list[Delivery] = []
        self._ids = iter(range(500, 10_000))

    async def send(self, notification: Notification) -> Delivery:
        self.calls.append(("send", notification.id, None))
        return Delivery(Outcome.SENT, message_id=next(self._ids))

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        self.calls.append(("edit", notification.id, message_id))
        if self.edit_answers:
            return self.edit_answers.pop(0)
        return Delivery(Outcome.SENT, message_id=message_id)
