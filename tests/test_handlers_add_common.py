"""What registering an account answers (bot.telegram.handlers.add_common), in one line or at the
dialog's password step: how often it is checked, whether an alert is set, and a refusal's
time to try again. The hostile side of /add: tests/test_handlers_add.py."""

import pytest

from tests.handler_fixtures import say

pytestmark = pytest.mark.usefixtures("fast_retries")


@pytest.mark.parametrize(
    ("language", "checked", "no_alert"),
    [
        (
            "en",
            "will be checked every 15 min.",
            "No low-balance alert is set: /threshold shop &lt;amount&gt;",
        ),
        (
            "ru",
            "будет проверяться каждые 15 мин.",
            "Предупреждение о низком балансе не задано: /threshold shop &lt;сумма&gt;",
        ),
    ],
)
async def test_one_line_add_says_how_often_and_that_no_alert_is_set(
    dp, bot, language, checked, no_alert
):
    [reply] = await say(dp, bot, 1, "/add shop right", language=language)
    assert checked in reply.text
    assert reply.text.endswith(no_alert)


async def test_one_line_add_with_a_threshold_says_no_more_about_alerts(dp, bot):
    [reply] = await say(dp, bot, 1, "/add shop right 100")
    assert "will be checked every 15 min." in reply.text
    assert "/threshold" not in reply.text
