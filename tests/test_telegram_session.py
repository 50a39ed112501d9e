"""Answers of the Bot API are validated without building their pydantic model again each time,
ones that are not JSON become the errors they stand for, and so does a proxy that fails."""

import gc
import json
import weakref

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import TelegramNetworkError, TelegramServerError
from aiogram.methods import SendMessage

from bot.telegram.session import TelegramSession
from tests.fake_proxy import FAILURES, failing
from tests.fake_telegram import FakeTelegram

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


HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


async def test_an_html_error_page_is_a_short_server_error_not_a_decode_error():
    session = TelegramSession()
    bot = Bot("42:TEST", session=session)
    try:
        with pytest.raises(TelegramServerError) as caught:
            session.check_response(bot, SendMessage(chat_id=1, text="hi"), 502, HTML_502)
        assert str(caught.value.message) == "HTTP 502 Bad Gateway, not a Bot API answer"
        with pytest.raises(TelegramNetworkError):  # a proxy's page: retried like an outage
            session.check_response(bot, SendMessage(chat_id=1, text="hi"), 200, HTML_502)
    finally:
        await session.close()


@pytest.mark.parametrize(
    ("fault", "scheme"), [*FAILURES, ("hangs up", "socks4"), ("hangs up", "http")]
)
async def test_a_failing_proxy_is_a_network_error_that_names_no_password(fault, scheme):
    """What the start-up wait, polling and the outbox retry; anything else escaped aiogram."""
    with FakeTelegram() as telegram, failing(fault, scheme) as url:
        session = TelegramSession(api=TelegramAPIServer.from_base(telegram.url), proxy=url)
        bot = Bot("42:TEST", session=session)
        try:
            with pytest.raises(TelegramNetworkError) as caught:
                await bot.get_me()
        finally:
            await session.close()
        assert "proxy" in str(caught.value) and "pa55" not in str(caught.value)
        assert not telegram.calls_of("getMe")
