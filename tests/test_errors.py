"""Where a failed update ends (bot.telegram.handlers.errors): one log record for the operator
and an apology in the chat's language, on either database, even when the update's transaction
is what failed."""

import logging
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.alerting.chats import ChatService
from bot.config import Settings
from bot.storage.engine import StatementTimeout, create_engine, create_sessionmaker
from bot.storage.models import Chat
from bot.webhook import SECRET_HEADER, Receiver, told_already
from tests.e2e_helpers import free_port
from tests.handler_fixtures import say
from tests.mocked_bot import MockedBot, message_update
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES
SECRET = "s3cret"


@pytest.fixture
def broken_commit(monkeypatch):
    """/tz fails at its commit, as a database refusing a write does (NOT NULL violated): the
    session rolls back, and every object it had loaded, the chat's included, is expired."""

    async def set_timezone(self, chat: Chat, zone: str) -> None:
        chat.type = None
        await self._session.commit()

    monkeypatch.setattr(ChatService, "set_timezone", set_timezone)


@pytest.mark.parametrize(
    ("language", "apology"),
    [
        ("en", "Something went wrong on my side. Please try again."),
        ("ru", "У меня что-то пошло не так. Попробуйте ещё раз."),
    ],
)
async def test_a_failed_write_gets_an_apology_in_the_chats_language(
    dp, bot, sessionmaker, caplog, broken_commit, language, apology
):
    await say(dp, bot, 1, "/start", language=language)
    with caplog.at_level(logging.ERROR):
        [reply] = await say(dp, bot, 1, "/tz Europe/Moscow")
    assert reply.text == apology
    [failed] = [r for r in caplog.records if r.getMessage().startswith("update failed")]
    assert "error=IntegrityError" in failed.getMessage()
    async with sessionmaker() as session:
        chat = await session.get(Chat, 1)
    assert (chat.timezone, chat.type) == ("UTC", "private")


async def test_a_statement_cut_by_the_bound_is_one_line_and_an_apology(
    dp, bot, caplog, monkeypatch
):
    # The database held up (bot.storage.engine's bound on PostgreSQL): each update it cuts is
    # a line for the operator, not a bug's traceback, and the user is asked to try again.
    async def held_up(self, chat: Chat, zone: str) -> None:
        raise StatementTimeout("a database statement ran past 30 s and was cut")

    monkeypatch.setattr(ChatService, "set_timezone", held_up)
    await say(dp, bot, 1, "/start")
    with caplog.at_level(logging.INFO):
        [reply] = await say(dp, bot, 1, "/tz Europe/Moscow")
    assert reply.text == "Something went wrong on my side. Please try again."
    [failed] = [r for r in caplog.records if r.getMessage().startswith("update failed")]
    assert failed.levelno == logging.WARNING and not failed.exc_info
    assert "ran past 30 s" in failed.getMessage()


@pytest.fixture
async def database_down(dp, monkeypatch):
    """The bot's database stopped: nothing listens where the bot's engine connects."""
    engine = create_engine(f"postgresql+asyncpg://bot@127.0.0.1:{free_port()}/bot")
    monkeypatch.setitem(dp.workflow_data, "sessionmaker", create_sessionmaker(engine))
    monkeypatch.setitem(dp.workflow_data, "reader", None)
    yield
    await engine.dispose()


async def test_an_update_during_a_database_outage_is_one_line_and_an_apology(
    dp, bot, caplog, database_down
):
    # By polling: getUpdates has moved past the update, so the user is asked to try again;
    # the operator reads one line per update, not a traceback each.
    with caplog.at_level(logging.INFO):
        [reply] = await say(dp, bot, 1, "/balance")
    assert reply.text == "Something went wrong on my side. Please try again."
    [line] = [r for r in caplog.records if r.name == "bot.telegram.handlers.errors"]
    assert line.levelno == logging.WARNING and not line.exc_info
    assert re.fullmatch(
        r"update failed update_id=\d+: database unreachable: ConnectionRefusedError",
        line.getMessage(),
    )
    assert "Traceback" not in caplog.text


async def test_by_webhook_an_update_during_a_database_outage_is_delivered_again(
    dp, caplog, database_down, monkeypatch
):
    settings = Settings(
        bot_token="42:TEST",
        smsc_base_url="https://smsc.ru",
        webhook_url="https://bot.example/hook",
        webhook_secret=SECRET,
        http_port=8080,
    )
    monkeypatch.setitem(dp.workflow_data, "settings", settings)
    bot = MockedBot()
    receiver = Receiver(dp, bot, SECRET, on_update=lambda: None)
    receiver.accepting = True
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    update = message_update(1, "/balance").model_dump(mode="json", exclude_none=True)
    async with TestClient(TestServer(app)) as client:
        answer = await client.post("/hook", json=update, headers={SECRET_HEADER: SECRET})
    # 503: Telegram delivers it again, once the database is back; nobody was told to retry.
    assert answer.status == 503
    assert bot.session.requests == []
    [line] = [r for r in caplog.records if r.name == "bot.telegram.handlers.errors"]
    assert line.levelno == logging.WARNING and not line.exc_info
    expected = r"update not handled update_id=\d+: database unreachable: ConnectionRefusedError"
    assert re.fullmatch(expected, line.getMessage())
    # aiogram's own traceback of it is left out where the bot logs (bot.app).
    [aiogram_line] = [r for r in caplog.records if r.name == "aiogram.event"]
    assert not told_already(aiogram_line)
