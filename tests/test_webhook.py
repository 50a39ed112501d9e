"""The webhook's receiver (bot.webhook): what Telegram is answered, so that an update is
handled once, or delivered again when it could not be handled."""

import asyncio
import contextlib
import json
import logging
from types import SimpleNamespace

import pytest
from aiogram import Dispatcher, Router
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import Message
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.exceptions import ConnectionError

from bot.factory import dialog_storage
from bot.fleet.connection import connect
from bot.fleet.update_marks import UNDER_WAY_SECONDS, RedisUpdateMarks
from bot.fleet.updates import Seen
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
async def posting(redis_url: str, marks: bool = False, under_way: float = UNDER_WAY_SECONDS):
    """The receiver of `post`, its dialogs in the Redis at `redis_url`; with `marks`, those of
    the updates handled too, as a replica's."""
    redis = connect(redis_url)
    storage, isolation = dialog_storage(redis)
    settings = SimpleNamespace(webhook_url="https://bot.example/hook")  # all on_error reads
    dp = Dispatcher(storage=storage, events_isolation=isolation, settings=settings)
    handled = []
    seen = Router()

    @seen.message()
    async def record(message: Message) -> None:
        handled.append(message.message_id)

    seen.error()(on_error)  # the bot's own error handler (its router is the bot's)
    dp.include_router(seen)
    shared = RedisUpdateMarks(redis, bot_id=42, under_way=under_way) if marks else None
    receiver = Receiver(dp, MockedBot(), SECRET, on_update=lambda: None, marks=shared)
    receiver.accepting = True
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with TestClient(TestServer(app)) as client:

        async def send(secret: str, body: bytes | None = None) -> tuple[int, list[int]]:
            body = json.dumps(UPDATE).encode() if body is None else body
            answer = await client.post("/hook", data=body, headers={SECRET_HEADER: secret})
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


async def test_an_update_delivered_again_to_any_replica_is_handled_once(redis_url):
    async with posting(redis_url, marks=True) as a, posting(redis_url, marks=True) as b:
        assert await a(SECRET) == (200, [1])
        assert await b(SECRET) == (200, [])  # Telegram did not get the answer: again, elsewhere
        assert await a(SECRET) == (200, [1])


async def test_an_update_whose_replica_died_while_handling_it_is_handled_when_delivered_again(
    redis_url,
):
    # A replica took the update (its "under way" mark) and was killed before answering.
    async with posting(redis_url, marks=True, under_way=0.3) as dead:
        async with connect(redis_url) as redis:
            assert await RedisUpdateMarks(redis, bot_id=42, under_way=0.3).take(7) is Seen.NEW
        # Meanwhile, a delivery of it elsewhere waits: the first may still answer.
        assert await dead(SECRET) == (503, [])
        await asyncio.sleep(0.4)
        assert await dead(SECRET) == (200, [1])


async def test_marks_out_of_reach_have_telegram_deliver_the_update_again(caplog):
    async with posting(f"redis://127.0.0.1:{free_port()}/0", marks=True) as send:
        assert await send(SECRET) == (503, [])
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage() == "update not handled update_id=7: redis unreachable: ConnectionError"


@pytest.mark.parametrize(
    "body",
    [b"hello world", b"[1,2]", b'{"foo": 1}', b"", b'{"update_id": 5, "x": "\xff\xfe"}'],
    ids=["not JSON", "a list", "no update", "empty", "not UTF-8"],
)
async def test_a_body_that_is_no_update_is_refused_in_one_line(redis_url, caplog, body):
    async with posting(redis_url, marks=True) as send:
        assert await send(SECRET, body) == (400, [])
    [line] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert line.getMessage().startswith("webhook body refused: not an update error=")
    assert "Traceback" not in caplog.text and "hello" not in caplog.text
