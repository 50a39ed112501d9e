"""The outbox's sender against the fake Bot API: the lean sendMessage (built unvalidated from
the stored row, its answer read for the message id) sends what the row says, and its failures
are counted under sendMessage like any other."""

import time
from datetime import UTC, datetime

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer

from bot.alerting.claims import Outgoing
from bot.alerting.delivery import Outcome
from bot.ops.metrics import Metrics
from bot.telegram.observe import TelegramWatch
from bot.telegram.sender import TelegramSender
from bot.telegram.session import TelegramSession
from tests.bot_process import TOKEN

CHAT = 700
MARKUP = '{"inline_keyboard": [[{"text": "Snooze 1 h", "callback_data": "alert:3:1"}]]}'


def outgoing(**fields) -> Outgoing:
    values = {
        "id": 1,
        "chat_id": CHAT,
        "thread_id": None,
        "kind": "low",
        "text": "<b>shop</b> is low",
        "reply_markup": None,
        "silent": False,
        "attempts": 0,
        "lease_until": datetime.now(UTC),
        "created_at": datetime.now(UTC),
        "edit_of": None,
    }
    return Outgoing(**{**values, **fields})


@pytest.fixture
async def watched(telegram):
    metrics = Metrics()
    session = TelegramSession(api=TelegramAPIServer.from_base(telegram.url))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode="HTML"))
    bot.session.middleware(TelegramWatch(metrics))
    yield TelegramSender(bot, timeout=1.0), metrics
    await bot.session.close()


async def test_a_send_telegram_leaves_hanging_fails_within_its_timeout(watched, telegram):
    """Within the outbox's lease: a send still hanging when the lease ran out was claimed and
    sent again while the first could still go through."""
    sender, _ = watched
    telegram.answer_late("sendMessage", 5)
    started = time.monotonic()
    delivery = await sender.send(outgoing())
    assert delivery.outcome is Outcome.FAILED and time.monotonic() - started < 3


async def test_sends_the_rows_text_keyboard_and_silence(watched, telegram):
    sender, _ = watched
    first = await sender.send(outgoing(reply_markup=MARKUP, silent=True))
    second = await sender.send(outgoing(id=2, text="plain"))
    [with_buttons, plain] = telegram.sent(CHAT)
    assert first.outcome is Outcome.SENT and first.message_id == with_buttons["message_id"]
    assert second.message_id == plain["message_id"] != first.message_id
    assert with_buttons["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "alert:3:1"
    assert with_buttons["disable_notification"] is True
    assert "reply_markup" not in plain or not plain["reply_markup"]
    # The bot's default parse mode applies, as to any sendMessage: the tags are markup.
    assert [m["text"] for m in telegram.sent(CHAT)] == ["shop is low", "plain"]


async def test_a_failed_send_counts_as_sendmessage(watched, telegram):
    sender, metrics = watched
    telegram.fail("sendMessage", status=502)
    delivery = await sender.send(outgoing())
    assert delivery.outcome is Outcome.FAILED
    assert metrics.telegram_errors.labels("SendMessage", "5xx")._value.get() == 1
