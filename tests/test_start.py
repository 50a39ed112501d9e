"""/cancel (bot.telegram.handlers.start) where it ends an /add dialog whose account is saved
already, at the threshold question; and a new /add there (add_dialog.begin_dialog)."""

import pytest
from aiogram.types import ReplyKeyboardRemove

from bot.telegram.handlers.add_dialog import ReplaceChoice
from tests.add_fixtures import accounts_of, press, walk_to_secret
from tests.handler_fixtures import say

pytestmark = pytest.mark.usefixtures("fast_retries")

KEPT = {
    "en": [
        "The account <b>shop</b> stays registered (it was saved when SMSC accepted it).",
        "No low-balance alert is set: /threshold shop &lt;amount&gt;",
        "To remove it: /remove shop",
    ],
    "ru": [
        "Аккаунт <b>shop</b> остаётся подключённым (он сохранён, когда SMSC его принял).",
        "Предупреждение о низком балансе не задано: /threshold shop &lt;сумма&gt;",
        "Чтобы удалить его: /remove shop",
    ],
}
CANCELLED = {"en": "Cancelled. ", "ru": "Отменено. "}


async def at_threshold(dp, bot, language="en"):
    await say(dp, bot, 1, "/add", language=language)
    await walk_to_secret(dp, bot, 1, 1, "shop", language=language)
    await say(dp, bot, 1, "right", language=language)  # saved; the threshold is asked


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_cancel_at_the_threshold_says_the_account_stays(dp, bot, sessionmaker, language):
    await at_threshold(dp, bot, language)
    [reply] = await say(dp, bot, 1, "/cancel", language=language)
    first, *rest = KEPT[language]
    assert reply.text.split("\n") == [CANCELLED[language] + first, *rest]
    assert isinstance(reply.reply_markup, ReplyKeyboardRemove)
    assert await dp.fsm.get_context(bot, 1, 1).get_state() is None
    [account] = await accounts_of(sessionmaker, 1)
    assert account.threshold is None


async def test_cancel_at_the_threshold_of_a_replacement_says_its_levels_stay(dp, bot):
    await say(dp, bot, 1, "/add shop right 100")
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    await press(dp, bot, 1, ReplaceChoice(replace=True).pack(), 1)
    await say(dp, bot, 1, "right")
    [reply] = await say(dp, bot, 1, "/cancel")
    assert reply.text == (
        "Cancelled. The new credentials of <b>shop</b> stay saved; its alert levels are as "
        "they were."
    )


async def test_cancel_before_the_password_is_plain(dp, bot):
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    [reply] = await say(dp, bot, 1, "/cancel")
    assert reply.text == "Cancelled."


async def test_a_new_add_at_the_threshold_says_the_last_account_stays(dp, bot, sessionmaker):
    await at_threshold(dp, bot)
    [kept, question] = await say(dp, bot, 1, "/add")
    assert kept.text.split("\n") == KEPT["en"]
    assert "sign in" in question.text
    [account] = await accounts_of(sessionmaker, 1)
    assert account.threshold is None
