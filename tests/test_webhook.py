"""The webhook's receiver (bot.webhook): what Telegram is answered, so that an update is
handled once, or delivered again when it could not be handled."""

import contextlib
import logging

import pytest
from aiogram import Dispatcher, Router
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError

from bot.factory import dialog_storage
from bot.fleet.connection import connect
from bot.telegram.handlers.errors import on_error
from bot.webhook import SECRET_HEADER, Receiver, told_already
from tests.e2e_helpers import free_port
from tests.mocked_bot import MockedBot

SECRET = "s3cret"
UPDATE = {
    "update_id": 7,
    "message": {
        "message_id": 1,
        "date": 0,
        "text": "/help",
        "chat": {"id": 5, "type": "private"},
        "from": {"id": 5, "is_bot": False, "first_name": "Ann"},
    },
}


@pytest.fixture
async def post():
    """POST an update to a receiver whose dispatcher keeps dialogs in a Redis that is down:
    (status, the updates its handler saw)."""
    async with posting(f"redis://127.0.0.1:{free_port()}/0") as send:  # nothing listens there
        yield send


@contextlib.asynccontextmanager
async def posting(redis_url: str):
    """The receiver of `post`, its dialogs in the Redis at `redis_url`."""
    redis = connect(redis_url)
    storage, isolation = dialog_storage(redis)
    dp = Dispatcher(storage=storage, events_isolation=isolation)
    handled = []
    seen = Router()

    @seen.message()
    async def record(message: Message) -> None:
        handled.append(message.message_id)

    seen.error()(on_error)  # the bot's own error handler (its router is the bot's)
    dp.include_router(seen)
    receiver = Receiver(dp, MockedBot(), SECRET, on_update=lambda: None)
    receiver.accepting = True
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with TestClient(TestServer(app)) as client:

        async def send(secret: str) -> tuple[int, list[int]]:
            answer = await client.post("/hook", json=UPDATE, headers={SECRET_HEADER: secret})
            return answer.status, handled

        yield send
    await redis.aclose()


async def test_an_update_redis_cannot_serve_is_answered_503_for_telegram_to_resend(post, caplog):
    assert await post(SECRET) == (503, [])
    [line] = [r for r in caplog.records if r.name == "bot.telegram.handlers.errors"]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert line.getMessage() == "update not handled update_id=7: redis unreachable: ConnectionError"
    # aiogram's own traceback of it is filtered out where the bot logs (bot.app).
    [aiogram_line] = [r for r in caplog.records if r.name == "aiogram.event"]
    assert not told_already(aiogram_line)
    other = logging.LogRecord("aiogram.event", logging.ERROR, "", 0, "x", None, None)
    other.exc_class = ZeroDivisionError
    assert told_already(other)


async def test_a_redis_that_refuses_the_password_is_said_so_on_each_update(
    redis_with_password, caplog
):
    # A password changed while the replicas run: Telegram delivers again, as for an outage,
    # and the line says what to fix.
    async with posting(redis_with_password.replace("redis://", "redis://:Old-pa55@")) as send:
        assert await send(SECRET) == (503, [])
    [line] = [r for r in caplog.records if r.name == "bot.telegram.handlers.errors"]
    expected = "update not handled update_id=7: redis refused the password: AuthenticationError"
    assert line.getMessage() == expected


@pytest.mark.parametrize("secret", ["wrong", "é", ""])
async def test_a_wrong_secret_is_401_whatever_its_characters(post, caplog, secret):
    assert await post(secret) == (401, [])
    assert "Traceback" not in caplog.text


class ReleaseFails:
    """A Redis that gives the chat's turn, and is gone when it is given back."""

    def lock(self, name, **kwargs):
        class Turn:
            async def acquire(self):
                return True

            async def release(self):
                raise ConnectionError("gone at release")

        return Turn()


async def test_a_turn_not_given_back_after_the_update_was_handled_is_no_failure(caplog):
    _storage, isolation = dialog_storage(ReleaseFails())
    handled = []
    async with isolation.lock(StorageKey(bot_id=1, chat_id=1, user_id=1)):
        handled.append("replied")
    # Not StateUnavailable: a 503 would have Telegram deliver the update again, handled twice.
    assert handled == ["replied"]
    assert "chat turn not given back error=ConnectionError" in caplog.text
