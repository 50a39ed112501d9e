"""The /add dialog's tests' helpers (a pytest plugin: tests/conftest.py): buttons pressed, the
dialog walked to its secret, photos and stickers sent, the hand-off link, a chat's accounts,
the bot removed from the group, and `fast_retries` for the deletes of secrets."""

from datetime import UTC, datetime

import pytest
from aiogram.methods import GetChatMember, SendMessage
from aiogram.types import Message, PhotoSize, Sticker, Update
from sqlalchemy import select

from bot.storage.models import Account
from bot.telegram.handlers import add_common
from bot.telegram.handlers.add_dialog import KindChoice, SiteChoice
from tests.handler_fixtures import ADMIN, GROUP, say
from tests.mocked_bot import BOT_USER, callback_update, member_update, message_update


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(add_common, "DELETE_PAUSE", 0.01)


def reply_to_bot(chat_id: int) -> Message:
    return Message(
        message_id=1,
        date=datetime.now(UTC),
        chat={"id": chat_id, "type": "supergroup"},
        from_user=BOT_USER,
        text="…",
    )


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


async def dialog_at_secret(dp, bot, chat_id, language="en") -> dict:
    """An admin's /add walked to the password for "shop": in a group through "Continue here",
    answering by replies to the bot. The keyword arguments that make a message an answer."""
    user_id = ADMIN if chat_id == GROUP else chat_id
    answer = {"language": language}
    [offer] = await say(dp, bot, chat_id, "/add", user_id=user_id, **answer)
    if chat_id == GROUP:
        await press(dp, bot, GROUP, offer.reply_markup.inline_keyboard[-1][0].callback_data, ADMIN)
        answer["reply_to"] = reply_to_bot(GROUP)
    await walk_to_secret(dp, bot, chat_id, user_id, "shop", **answer)
    return {"user_id": user_id, **answer}


def media(update: Update, kind: str, caption: str | None = None) -> Update:
    """The message of `update` as a photo (with `caption`) or a sticker, without its text."""
    content = {
        "photo": {"photo": [PhotoSize(file_id="p", file_unique_id="p", width=1, height=1)]},
        "sticker": {
            "sticker": Sticker(
                file_id="s",
                file_unique_id="s",
                type="regular",
                width=1,
                height=1,
                is_animated=False,
                is_video=False,
            )
        },
    }[kind]
    message = update.message.model_copy(
        update={"text": None, "entities": None, "caption": caption} | content
    )
    return update.model_copy(update={"message": message})


async def send_media(dp, bot, chat_id, kind, caption=None, **kwargs) -> list[SendMessage]:
    """A photo or sticker sent as `say` sends text: the replies to it."""
    before = len(bot.session.requests)
    await dp.feed_update(bot, media(message_update(chat_id, "-", **kwargs), kind, caption))
    return [r for r in bot.session.requests[before:] if isinstance(r, SendMessage)]


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
