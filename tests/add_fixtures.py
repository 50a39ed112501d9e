"""The /add dialog's tests' helpers (a pytest plugin: tests/conftest.py): buttons pressed, the
dialog walked to its secret, the hand-off link, a chat's accounts, the bot removed from the
group, and `fast_retries` for the deletes of secrets."""

import pytest
from aiogram.methods import GetChatMember, SendMessage
from sqlalchemy import select

from bot.storage.models import Account
from bot.telegram.handlers import add_common
from bot.telegram.handlers.add_dialog import KindChoice, SiteChoice
from tests.handler_fixtures import ADMIN, GROUP, say
from tests.mocked_bot import callback_update, member_update


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(add_common, "DELETE_PAUSE", 0.01)


def link_payload(reply: SendMessage) -> str:
    url = reply.reply_markup.inline_keyboard[0][0].url
    return url.split("start=", 1)[1]


async def press(dp, bot, chat_id, data, user_id) -> list[SendMessage]:
    before = len(bot.session.requests)
    anchor = SendMessage(chat_id=chat_id, text="…")
    await dp.feed_update(bot, callback_update(anchor, data, user_id=user_id))
    return [r for r in bot.session.requests[before:] if isinstance(r, SendMessage)]


async def walk_to_secret(dp, bot, chat_id, user_id, name, **kwargs) -> list[SendMessage]:
    """Login and password, the first site, then `name`: the replies to the name."""
    await press(dp, bot, chat_id, KindChoice(apikey=False).pack(), user_id)
    await press(dp, bot, chat_id, SiteChoice(index=0).pack(), user_id)
    return await say(dp, bot, chat_id, name, user_id=user_id, **kwargs)


async def accounts_of(sessionmaker, chat_id):
    async with sessionmaker() as session:
        query = select(Account).where(Account.chat_id == chat_id)
        return (await session.scalars(query)).all()


async def handed_off(dp, bot) -> str:
    [reply] = await say(dp, bot, GROUP, "/add", user_id=ADMIN)
    return link_payload(reply)


async def remove_bot(dp, bot, *, seen: bool) -> None:
    """The bot removed from GROUP: `seen`, its my_chat_member update arrived (the group is
    inactive); or it was lost (say, while the bot was down), and the next getChatMember about
    the group tells, with Telegram's 403."""
    if seen:
        await dp.feed_update(bot, member_update(GROUP, joined=False))
    else:
        bot.session.fail(GetChatMember, 403, "Forbidden: bot was kicked from the supergroup chat")
