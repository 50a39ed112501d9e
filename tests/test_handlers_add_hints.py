"""What a step of the /add dialog does not take (bot.telegram.handlers.add_hints) is answered
with what the step expects, in the chat's language, in private chats and groups; the dialog
stays at its step."""

import pytest
from aiogram.methods import DeleteMessage, SendMessage
from aiogram.types import Update

from bot.telegram.handlers.add_dialog import KindChoice, SiteChoice
from tests.add_fixtures import dialog_at_secret, press, reply_to_bot, send_media
from tests.handler_fixtures import ADMIN, GROUP, say
from tests.mocked_bot import message_update

PRESS = {
    "en": "Press one of the buttons above, or /cancel to stop.",
    "ru": "Нажмите одну из кнопок выше или /cancel, чтобы прервать.",
}
LOGIN_HINT = {
    "en": "Send the SMSC login as text, or /cancel to stop.",
    "ru": "Пришлите логин SMSC текстом или /cancel, чтобы прервать.",
}
THRESHOLD_HINT = {
    "en": "Send the warning level as text: an amount like 500, or “off”.",
    "ru": "Пришлите порог предупреждения текстом: сумму, например 500, или «нет».",
}
EDIT_NOT_TAKEN = {
    "en": "I don't take edited messages, so your edit changed nothing.",
    "ru": "Исправленные сообщения я не принимаю, так что правка ничего не изменила.",
}

SECRET_HINT = {
    "en": "Send the password for <b>shop</b> as a text message, or /cancel to stop.",
    "ru": "Пришлите пароль от <b>shop</b> текстовым сообщением или /cancel, чтобы прервать.",
}


def asker(chat_id: int) -> int:
    return ADMIN if chat_id == GROUP else chat_id


async def step(dp, bot, chat_id) -> str | None:
    return await dp.fsm.get_context(bot, chat_id, asker(chat_id)).get_state()


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("chat_id", [1, GROUP])
async def test_a_sticker_at_the_password_step_gets_the_steps_hint(dp, bot, chat_id, language):
    answer = await dialog_at_secret(dp, bot, chat_id, language)
    [reply] = await send_media(dp, bot, chat_id, "sticker", **answer)
    assert reply.text.endswith(SECRET_HINT[language])
    assert bot.calls(DeleteMessage) == []  # nothing secret in it
    assert await step(dp, bot, chat_id) == "AddAccount:secret"


async def dialog_at(dp, bot, chat_id, language, where) -> dict:
    """An admin's /add at the step `where` (in a group through "Continue here"): the keyword
    arguments that make a message an answer."""
    user_id = asker(chat_id)
    answer = {"user_id": user_id, "language": language}
    if chat_id == GROUP:
        answer["reply_to"] = reply_to_bot(GROUP)
    if where == "replace":  # the name given is one the chat watches already
        await say(dp, bot, chat_id, "/add shop right", user_id=user_id, language=language)
    if where in ("replace", "threshold"):
        answer = await dialog_at_secret(dp, bot, chat_id, language)  # or the replacement asked
        if where == "threshold":
            await say(dp, bot, chat_id, "right", **answer)
        return answer
    [offer] = await say(dp, bot, chat_id, "/add", user_id=user_id, language=language)
    if chat_id == GROUP:
        await press(dp, bot, GROUP, offer.reply_markup.inline_keyboard[-1][0].callback_data, ADMIN)
    if where in ("site", "name"):
        await press(dp, bot, chat_id, KindChoice(apikey=False).pack(), user_id)
    if where == "name":
        await press(dp, bot, chat_id, SiteChoice(index=0).pack(), user_id)
    return answer


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("chat_id", [1, GROUP])
@pytest.mark.parametrize("where", ["kind", "site", "replace"])
async def test_text_where_a_button_is_awaited_is_told_to_press_one(
    dp, bot, chat_id, language, where
):
    answer = await dialog_at(dp, bot, chat_id, language, where)
    [reply] = await say(dp, bot, chat_id, "smsc.kz", **answer)
    assert reply.text.endswith(PRESS[language])
    assert reply.reply_markup is None  # no reply field forced open: the answer is a button
    assert await step(dp, bot, chat_id) == f"AddAccount:{where}"


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("chat_id", [1, GROUP])
@pytest.mark.parametrize(
    ("where", "hint"), [("kind", PRESS), ("name", LOGIN_HINT), ("threshold", THRESHOLD_HINT)]
)
async def test_a_photo_at_a_step_gets_the_steps_hint(dp, bot, chat_id, language, where, hint):
    answer = await dialog_at(dp, bot, chat_id, language, where)
    [reply] = await send_media(dp, bot, chat_id, "photo", caption="look", **answer)
    assert reply.text.endswith(hint[language])
    assert await step(dp, bot, chat_id) == f"AddAccount:{where}"


@pytest.mark.parametrize("chat_id", [1, GROUP])
@pytest.mark.parametrize("command", ["/balance", "/threshold shop 5", "/help"])
async def test_commands_mid_dialog_are_still_answered_as_commands(dp, bot, chat_id, command):
    answer = await dialog_at(dp, bot, chat_id, "en", "kind")
    replies = await say(dp, bot, chat_id, command, **answer)
    assert replies and all(PRESS["en"] not in r.text for r in replies)
    [cancelled] = await say(dp, bot, chat_id, "/cancel", **answer)
    assert cancelled.text == "Cancelled."


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("chat_id", [1, GROUP])
async def test_an_edited_login_is_not_taken_and_the_user_is_told(dp, bot, chat_id, language):
    """The login, corrected by an edit once the password is asked: the password would go with
    the login first sent, so the user is told the edit changed nothing."""
    answer = await dialog_at(dp, bot, chat_id, language, "name")
    sent = message_update(chat_id, "shop", **answer)
    await dp.feed_update(bot, sent)
    edit = sent.message.model_copy(update={"text": "shop2", "edit_date": 1})
    before = len(bot.session.requests)
    await dp.feed_update(bot, Update(update_id=10**6 + 7, edited_message=edit))
    [reply] = [r for r in bot.session.requests[before:] if isinstance(r, SendMessage)]
    assert EDIT_NOT_TAKEN[language] in reply.text
    assert reply.text.endswith(SECRET_HINT[language])  # the login in use: shop
    assert await step(dp, bot, chat_id) == "AddAccount:secret"
