"""Texts shared by replies and alerts, as a chat reads them in English and in Russian: the
runway, the check interval, the age of a balance served from memory."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.smsc.client import Balance
from bot.smsc.guard import BalanceResult
from bot.telegram.i18n import create_i18n
from bot.telegram.texts import balance_text, interval_label, runway_text
from tests.monitoring_fixtures import shop_account

I18N = create_i18n()
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def said(language: str, text, *args) -> str:
    with I18N.context(), I18N.use_locale(language):
        return text(*args)


@pytest.mark.parametrize(
    ("balance", "per_day", "english", "russian"),
    [
        ("0.00", "150", "the money has run out", "деньги закончились"),
        ("1.00", "150", "enough for less than an hour", "меньше чем на час"),
        (
            "100.00",
            "150",
            "enough for ~16 h (until 5 Dec 04:00)",
            "примерно на 16 ч (до 5 дек. 04:00)",
        ),
        ("160.00", "100", "enough for ~1 day (until 6 Dec)", "примерно на 1 день (до 6 дек.)"),
        ("300.00", "100", "enough for ~3 days (until 7 Dec)", "примерно на 3 дня (до 7 дек.)"),
        ("500.00", "100", "enough for ~5 days (until 9 Dec)", "примерно на 5 дней (до 9 дек.)"),
        (
            "2100.00",
            "100",
            "enough for ~21 days (until 25 Dec)",
            "примерно на 21 день (до 25 дек.)",
        ),
    ],
)
def test_runway_in_hours_under_a_day_and_in_days_in_their_plural(
    balance, per_day, english, russian
):
    account = shop_account(last_balance=Decimal(balance), spend_rate=Decimal(per_day))
    assert said("en", runway_text, account, NOW, "UTC") == english
    assert said("ru", runway_text, account, NOW, "UTC") == russian


@pytest.mark.parametrize(
    ("balance", "per_day", "english", "russian"),
    [
        # Within 300 days a day and month can only be the coming ones; further, which year?
        (
            "29000",
            "100",
            "enough for ~290 days (until 20 Sep)",
            "примерно на 290 дней (до 20 сент.)",
        ),
        (
            "31000",
            "100",
            "enough for ~310 days (until 10 Oct 2027)",
            "примерно на 310 дней (до 10 окт. 2027)",
        ),
        (
            "50000",
            "100",
            "enough for ~500 days (until 17 Apr 2028)",
            "примерно на 500 дней (до 17 апр. 2028)",
        ),
        # The forecast stops at a century: not a count of 36,500 days and a date of no year.
        ("1000000", "0.01", "enough for over 100 years", "больше чем на 100 лет"),
        ("999999999", "0.01", "enough for over 100 years", "больше чем на 100 лет"),
    ],
)
def test_a_long_runway_gives_its_year_and_a_century_says_so(balance, per_day, english, russian):
    account = shop_account(last_balance=Decimal(balance), spend_rate=Decimal(per_day))
    assert said("en", runway_text, account, NOW, "UTC") == english
    assert said("ru", runway_text, account, NOW, "UTC") == russian


def test_under_a_day_the_hours_and_the_time_they_end_agree():
    # 16 hours from 08:30 on 4 Dec: 00:30 on the 5th, where the date said 4 Dec.
    account = shop_account(last_balance=Decimal(100), spend_rate=Decimal(150))
    at = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)
    assert said("en", runway_text, account, at, "UTC") == "enough for ~16 h (until 5 Dec 00:30)"
    assert said("ru", runway_text, account, at, "UTC") == "примерно на 16 ч (до 5 дек. 00:30)"
    # And in the chat's zone: 03:30 in Moscow.
    assert said("en", runway_text, account, at, "Europe/Moscow").endswith("(until 5 Dec 03:30)")


@pytest.mark.parametrize(
    ("checked", "english", "russian"),
    [
        # 900 at 100 a day lasts 9 days from when it was read, not from now.
        (timedelta(days=3), "enough for ~6 days (until 10 Dec)", "примерно на 6 дней (до 10 дек.)"),
        (
            timedelta(days=8, hours=4),
            "enough for ~20 h (until 5 Dec 08:00)",
            "примерно на 20 ч (до 5 дек. 08:00)",
        ),
        (timedelta(days=9), "the money has run out", "деньги закончились"),
        (timedelta(days=12), "the money has run out", "деньги закончились"),
    ],
)
def test_runway_runs_from_when_the_balance_was_read(checked, english, russian):
    account = shop_account(
        last_balance=Decimal(900), spend_rate=Decimal(100), last_checked_at=NOW - checked
    )
    assert said("en", runway_text, account, NOW, "UTC") == english
    assert said("ru", runway_text, account, NOW, "UTC") == russian


@pytest.mark.parametrize(
    ("seconds", "english", "russian"),
    [
        (60, "every 1 min", "каждую 1 мин"),
        (120, "every 2 min", "каждые 2 мин"),
        (300, "every 5 min", "каждые 5 мин"),
        (660, "every 11 min", "каждые 11 мин"),
        (1260, "every 21 min", "каждую 21 мин"),
        (21, "every 21 s", "каждую 21 с"),
        (30, "every 30 s", "каждые 30 с"),
    ],
)
def test_interval_in_both_languages(seconds, english, russian):
    assert said("en", interval_label, seconds) == english
    assert said("ru", interval_label, seconds) == russian


def test_a_balance_from_memory_says_how_old_it_is():
    account = shop_account(last_balance=Decimal(150), threshold=None)
    result = BalanceResult(Balance(Decimal(150), Decimal(0), "RUB"), NOW, age=1, fresh=False)
    assert ", as of 1 second ago\n" in said("en", balance_text, account, result, "UTC")
    assert ", проверено 1 секунду назад\n" in said("ru", balance_text, account, result, "UTC")
