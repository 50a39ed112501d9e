"""The /add dialog's expiry (bot.telegram.middlewares.DialogExpiry) where the account is saved
already: at the threshold question. Its other steps: tests/test_handlers_add.py."""

import time

import pytest

from bot.telegram.handlers.add_dialog import ReplaceChoice
from tests.add_fixtures import accounts_of, press, walk_to_secret
from tests.handler_fixtures import say

pytestmark = pytest.mark.usefixtures("fast_retries")


async def idle_at_threshold(dp, bot, language="en"):
    await say(dp, bot, 1, "right", language=language)  # the password: saved, threshold asked
    await dp.fsm.get_context(bot, 1, 1).update_data(active=time.time() - 31 * 60)
    [reply] = await say(dp, bot, 1, "500", language=language)
    assert await dp.fsm.get_context(bot, 1, 1).get_state() is None
    return reply


@pytest.mark.parametrize(
    ("language", "lines"),
    [
        (
            "en",
            [
                "This /add dialog expired after 30 minutes without an answer. The account "
                "<b>shop</b> stays registered (it was saved when SMSC accepted it).",
                "No low-balance alert is set: /threshold shop &lt;amount&gt;",
                "To remove it: /remove shop",
            ],
        ),
        (
            "ru",
            [
                "Диалог /add истёк: 30 минут не было ответа. Аккаунт <b>shop</b> остаётся "
                "подключённым (он сохранён, когда SMSC его принял).",
                "Предупреждение о низком балансе не задано: /threshold shop &lt;сумма&gt;",
                "Чтобы удалить его: /remove shop",
            ],
        ),
    ],
)
async def test_expiry_at_the_threshold_says_the_account_is_registered_without_alert(
    dp, bot, sessionmaker, language, lines
):
    await say(dp, bot, 1, "/add", language=language)
    await walk_to_secret(dp, bot, 1, 1, "shop", language=language)
    reply = await idle_at_threshold(dp, bot, language)
    assert reply.text.split("\n") == lines
    [account] = await accounts_of(sessionmaker, 1)
    assert account.threshold is None  # the late answer is not taken


async def test_expiry_at_the_threshold_of_a_replacement_says_its_levels_stay(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right 100")
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    await press(dp, bot, 1, ReplaceChoice(replace=True).pack(), 1)
    reply = await idle_at_threshold(dp, bot)
    assert reply.text == (
        "This /add dialog expired after 30 minutes without an answer. The new credentials "
        "of <b>shop</b> stay saved; its alert levels are as they were."
    )
    [account] = await accounts_of(sessionmaker, 1)
    assert account.threshold == 100
