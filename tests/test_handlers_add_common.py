"""What registering an account answers (bot.telegram.handlers.add_common), in one line or at the
dialog's password step: how often it is checked, whether an alert is set, and a refusal's
time to try again. The hostile side of /add: tests/test_handlers_add.py."""

import re
from datetime import UTC, datetime

import pytest

from bot.smsc.refusals import CredentialsRejected
from bot.telegram.handlers.add_common import refusal, retry_time
from bot.telegram.i18n import create_i18n
from tests.add_fixtures import walk_to_secret
from tests.handler_fixtures import say

pytestmark = pytest.mark.usefixtures("fast_retries")
I18N = create_i18n()


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


def said_time(text: str) -> str:
    [moment] = re.findall(r"\d\d:\d\d \(Europe/Moscow\)", text)
    return moment


@pytest.mark.parametrize(
    ("language", "when"),
    [
        ("en", "you can try new credentials again at "),
        ("ru", "новые данные можно будет проверить в "),
    ],
)
async def test_a_refused_password_says_at_once_when_new_credentials_may_be_tried(
    dp, bot, language, when
):
    await say(dp, bot, 1, "/tz Europe/Moscow", language=language)
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop", language=language)
    [refused] = await say(dp, bot, 1, "wrong", language=language)
    assert when + said_time(refused.text) in refused.text
    # ...the very time the next try, the right password this time, is refused until.
    await say(dp, bot, 1, "/add", language=language)
    await walk_to_secret(dp, bot, 1, 1, "shop", language=language)
    [paused] = await say(dp, bot, 1, "right", language=language)
    assert said_time(paused.text) == said_time(refused.text)


def test_credentials_not_sent_again_are_not_given_a_time_they_did_not_spend():
    # Refused before and not sent again (CredentialsRejected): nobody's allowance was spent.
    with I18N.context(), I18N.use_locale("en"):
        text = refusal(CredentialsRejected(), "shop", "UTC")
    assert text.startswith("Not saved. SMSC refused") and "again at" not in text


@pytest.mark.parametrize(
    ("until", "said"),
    [
        (datetime(2026, 12, 4, 20, 18, 30, tzinfo=UTC), "23:19 (Europe/Moscow)"),
        (datetime(2026, 12, 4, 20, 18, tzinfo=UTC), "23:18 (Europe/Moscow)"),
    ],
)
def test_the_time_to_try_again_is_never_a_minute_too_early(until, said):
    assert retry_time(until, "Europe/Moscow") == said
