"""Outbox edits (issue 15): a notification with edit_of edits the message of an earlier one,
in the chat's order; nothing to edit, or Telegram refusing the edit, is skipped quietly."""

import logging
import random

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer

from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.outbox import Outbox
from bot.storage.models import Chat, Notification
from bot.telegram.sender import TelegramSender
from bot.telegram.session import TelegramSession
from tests.bot_process import TOKEN
from tests.outbox_fixtures import FakeSender, MonotonicClock, settle, stored

GROUP = -100300
MARKUP = '{"inline_keyboard": [[{"text": "Check now", "callback_data": "alert:1:0"}]]}'


@pytest.fixture
def sender():
    return FakeSender()


@pytest.fixture
def outbox(sender, sessionmaker, clock):
    return Outbox(
        sender, sessionmaker, clock=MonotonicClock(clock), now=clock, rng=random.Random(1)
    )


async def add(sessionmaker, clock, **fields) -> int:
    async with sessionmaker() as session:
        if await session.get(Chat, GROUP) is None:
            session.add(Chat(id=GROUP, type="supergroup", language="en"))
        note = Notification(
            chat_id=GROUP,
            kind=fields.pop("kind", "low"),
            text=fields.pop("text", "alert"),
            next_attempt_at=clock.now,
            **fields,
        )
        session.add(note)
        await session.commit()
        return note.id


async def test_an_edit_edits_the_message_of_the_notification_it_names(
    outbox, sender, sessionmaker, clock
):
    alert = await add(sessionmaker, clock, reply_markup=MARKUP)
    await settle(outbox, clock, 5)
    edit = await add(sessionmaker, clock, kind="resolved", text="alert\n\nResolved", edit_of=alert)
    await settle(outbox, clock, 5)
    sent_alert, sent_edit = await stored(sessionmaker)
    assert sender.calls == [("send", alert, None), ("edit", edit, sent_alert.message_id)]
    assert sent_edit.sent_at is not None and sent_edit.failure is None


async def test_an_edit_queued_before_a_long_stop_still_brings_its_message_up_to_date(
    outbox, sender, sessionmaker, clock
):
    alert = await add(sessionmaker, clock, created_at=clock.now, reply_markup=MARKUP)
    await settle(outbox, clock, 5)
    edit = await add(sessionmaker, clock, created_at=clock.now, kind="resolved", edit_of=alert)
    clock.advance(days=3)  # the bot stopped meanwhile: the buttons still come off
    await settle(outbox, clock, 5)
    sent_alert, sent_edit = await stored(sessionmaker)
    assert sender.calls[-1] == ("edit", edit, sent_alert.message_id)
    assert sent_edit.sent_at is not None and sent_edit.failure is None


async def test_an_edit_waits_behind_its_chats_older_notifications(
    outbox, sender, sessionmaker, clock
):
    alert = await add(sessionmaker, clock)
    edit = await add(sessionmaker, clock, kind="acked", edit_of=alert)
    await outbox.deliver_pending()
    assert sender.calls == [("send", alert, None)]  # the edit waited for the alert
    await settle(outbox, clock, 5)
    assert [call[:2] for call in sender.calls] == [("send", alert), ("edit", edit)]


@pytest.mark.parametrize("target", ["failed", "missing", "other chat"])
async def test_an_edit_of_a_never_sent_notification_is_skipped_quietly(
    outbox, sender, sessionmaker, clock, caplog, target
):
    if target == "failed":
        alert = await add(sessionmaker, clock, failure="stale")
    elif target == "missing":
        alert = 10_000
    else:
        async with sessionmaker() as session:
            session.add(Chat(id=7, type="private", language="en"))
            session.add(
                Notification(
                    id=9_000, chat_id=7, kind="low", text="x", message_id=5, sent_at=clock.now
                )
            )
            await session.commit()
        alert = 9_000
    edit = await add(sessionmaker, clock, kind="resolved", edit_of=alert)
    with caplog.at_level(logging.INFO):
        await settle(outbox, clock, 5)
    assert ("edit", edit) not in [call[:2] for call in sender.calls]
    note = next(n for n in await stored(sessionmaker) if n.id == edit)
    assert note.failure == "nothing to edit" and note.sent_at is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "notification edit skipped" in caplog.text


async def test_an_edit_telegram_refuses_is_given_up_quietly(
    outbox, sender, sessionmaker, clock, caplog
):
    alert = await add(sessionmaker, clock)
    await settle(outbox, clock, 5)
    sender.edit_answers.append(Delivery(Outcome.REFUSED, error="message can't be edited"))
    edit = await add(sessionmaker, clock, kind="resolved", edit_of=alert)
    after = await add(sessionmaker, clock, kind="recovered")
    with caplog.at_level(logging.INFO):
        await settle(outbox, clock, 5)
    notes = {n.id: n for n in await stored(sessionmaker)}
    assert notes[edit].failure == "not editable"
    assert notes[after].sent_at is not None  # the chat's next message is not held up
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "message can't be edited" in caplog.text


async def test_a_failed_edit_is_retried_like_a_send(outbox, sender, sessionmaker, clock):
    alert = await add(sessionmaker, clock)
    await settle(outbox, clock, 5)
    sender.edit_answers.append(Delivery(Outcome.FAILED, error="502"))
    edit = await add(sessionmaker, clock, kind="resolved", edit_of=alert)
    await settle(outbox, clock, 30)
    assert [call[:2] for call in sender.calls].count(("edit", edit)) == 2
    assert next(n for n in await stored(sessionmaker) if n.id == edit).sent_at is not None


@pytest.fixture
async def real_bot(telegram):
    session = TelegramSession(api=TelegramAPIServer.from_base(telegram.url))
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


async def test_telegram_sender_edits_text_and_removes_buttons(
    real_bot, telegram, sessionmaker, clock
):
    outbox = Outbox(TelegramSender(real_bot), sessionmaker, clock=MonotonicClock(clock), now=clock)
    alert = await add(sessionmaker, clock, reply_markup=MARKUP)
    await settle(outbox, clock, 5)
    await add(sessionmaker, clock, kind="resolved", text="alert\n\nResolved", edit_of=alert)
    await settle(outbox, clock, 5)
    [message] = telegram.sent(GROUP)
    assert message["text"] == "alert\n\nResolved"
    assert not message.get("reply_markup")
    # The message deleted meanwhile: Telegram's 400 is no error, and nothing is retried.
    await real_bot.delete_message(GROUP, message["message_id"])
    edit = await add(sessionmaker, clock, kind="resolved", text="again", edit_of=alert)
    await settle(outbox, clock, 5)
    assert next(n for n in await stored(sessionmaker) if n.id == edit).failure == "not editable"
    assert len(telegram.calls_of("editMessageText")) == 2
