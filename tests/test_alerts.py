"""Alerts as a chat reads them, rendered from an account as it stands, in both languages."""

from decimal import Decimal

import pytest

from bot.alerting.events import AlertEvent
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import START
from tests.monitoring_fixtures import shop_account

RENDERER = TelegramRenderer(create_i18n())


@pytest.mark.parametrize(
    ("days", "english", "russian"),
    [
        (1, "runway under 1 day.", "хватит меньше чем на 1 день."),
        (3, "runway under 3 days.", "хватит меньше чем на 3 дня."),
        (21, "runway under 21 days.", "хватит меньше чем на 21 день."),
    ],
)
def test_runway_alert_counts_the_days(days, english, russian):
    # 100.00 at 150.00 a day: money for 16 hours.
    account = shop_account(
        threshold=None,
        runway_threshold=days,
        last_balance=Decimal(100),
        spend_rate=Decimal(150),
        currency="RUB",
    )
    en, ru = (
        RENDERER.alert(AlertEvent("low", account, START, "UTC", language)).text.split("\n")[:2]
        for language in ("en", "ru")
    )
    assert en[0] == f"⚠️ <b>shop</b> will run out soon: 100.00 RUB, {english}"
    assert en[1].startswith("Runway: enough for ~16 h (until ")
    assert ru[0] == f"⚠️ Деньги на <b>shop</b> скоро закончатся: 100,00 RUB, {russian}"
    assert ru[1].startswith("Запас: примерно на 16 ч (до ")


@pytest.mark.parametrize(
    ("language", "head"),
    [
        ("en", "⏰ <b>shop</b> is still low: 1,010.00 RUB."),
        ("ru", "⏰ Баланс <b>shop</b> всё ещё низкий: 1\xa0010,00 RUB."),
    ],
)
def test_a_low_alert_within_the_recovery_margin_says_still_low(language, head):
    """A balance back above its threshold, not yet by the margin, is still low: alerted again
    (the chat let the bot back in), it says so, where it told of a runway nobody set (and
    failed in Russian, leaving the chat switched off)."""
    account = shop_account(threshold=Decimal(1000), last_balance=Decimal(1010), currency="RUB")
    text = RENDERER.alert(AlertEvent("low", account, START, "UTC", language)).text
    assert text.startswith(head)
