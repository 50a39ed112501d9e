"""The /add dialog's password step (bot.telegram.handlers.add_rights), in private chats and
groups: whatever carries text there leaves the chat at once, a photo's caption too."""

import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import DeleteMessage, SendMessage

from tests.add_fixtures import accounts_of, dialog_at_secret, media, reply_to_bot
from tests.handler_fixtures import GROUP, say
from tests.mocked_bot import message_update

pytestmark = pytest.mark.usefixtures("fast_retries")

NOT_FROM_A_CAPTION = {
    "en": "I take no password or API key from a caption. Send the password for <b>shop</b> "
    "as a text message, or /cancel to stop.",
    "ru": "Пароль или API-ключ из подписи я не принимаю. Пришлите пароль от <b>shop</b> "
    "текстовым сообщением или /cancel, чтобы прервать.",
}


async def feed(dp, bot, update) -> tuple[list[DeleteMessage], list[SendMessage]]:
    before = len(bot.session.requests)
    await dp.feed_update(bot, update)
    calls = bot.session.requests[before:]
    return [c for c in calls if isinstance(c, DeleteMessage)], [
        c for c in calls if isinstance(c, SendMessage)
    ]


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("chat_id", [1, GROUP])
async def test_a_password_in_a_photos_caption_is_deleted_and_asked_for_as_text(
    dp, bot, smsc, sessionmaker, chat_id, language
):
    answer = await dialog_at_secret(dp, bot, chat_id, language)
    photo = media(message_update(chat_id, "-", **answer), "photo", caption="right")
    [delete], [reply] = await feed(dp, bot, photo)
    assert (int(delete.chat_id), delete.message_id) == (chat_id, photo.message.message_id)
    assert reply.text.endswith(NOT_FROM_A_CAPTION[language])
    assert smsc.requests == []  # a caption is not tried as the password
    await say(dp, bot, chat_id, "right", **answer)  # the dialog still waits for it
    assert [a.name for a in await accounts_of(sessionmaker, chat_id)] == ["shop"]


async def test_a_captioned_answer_to_the_prompt_of_a_dialog_gone_is_deleted(dp, bot, smsc):
    """(In groups: tests/test_handlers_add_groups.py.)"""
    await dialog_at_secret(dp, bot, 1)
    [*_, ask] = bot.calls(SendMessage)
    dp.fsm.storage = MemoryStorage()  # a restart lost the dialog
    prompt = reply_to_bot(1).model_copy(update={"text": ask.text})
    photo = media(message_update(1, "-", reply_to=prompt), "photo", caption="right")
    [delete], [reply] = await feed(dp, bot, photo)
    assert delete.message_id == photo.message.message_id
    assert reply.text.startswith("That /add dialog has ended")
    assert smsc.requests == []
