"""What a step of the /add dialog does not take (bot.telegram.handlers.add_hints) is answered
with what the step expects, in the chat's language, in private chats and groups; the dialog
stays at its step."""

import pytest
from aiogram.methods import DeleteMessage

from tests.add_fixtures import dialog_at_secret, send_media
from tests.handler_fixtures import ADMIN, GROUP

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
