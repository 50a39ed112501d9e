"""Answers of the Bot API are validated without building their pydantic model again each time."""

import gc
import json
import weakref

from aiogram import Bot
from aiogram.methods import SendMessage

from bot.telegram_session import TelegramSession

ANSWER = json.dumps(
    {
        "ok": True,
        "result": {"message_id": 7, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"},
    }
)


async def test_the_model_of_an_answer_outlives_garbage_collection():
    session = TelegramSession()
    bot = Bot("42:TEST", session=session)
    try:
        first = session.check_response(bot, SendMessage(chat_id=1, text="hi"), 200, ANSWER)
        model = weakref.ref(type(first))
        del first
        gc.collect()
        again = session.check_response(bot, SendMessage(chat_id=1, text="hi"), 200, ANSWER)
        assert type(again) is model()  # the same model, not one built anew
        assert again.result.message_id == 7
    finally:
        await session.close()
