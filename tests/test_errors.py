"""Where a failed update ends (bot.telegram.handlers.errors): one log record for the operator
and an apology in the chat's language, on either database, even when the update's transaction
is what failed."""

import logging

import pytest

from bot.alerting.chats import ChatService
from bot.storage.engine import StatementTimeout
from bot.storage.models import Chat
from tests.handler_fixtures import say
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


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
