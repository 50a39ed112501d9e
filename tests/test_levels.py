"""Where a balance stands against an account's levels, with the chat's margin."""

from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

from bot.alerting import levels

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CHAT = SimpleNamespace(hysteresis_percent=Decimal(2))


def account(balance, *, threshold=None, critical=None, runway=None, rate=None):
    return SimpleNamespace(
        last_balance=None if balance is None else Decimal(balance),
        threshold=None if threshold is None else Decimal(threshold),
        critical_threshold=None if critical is None else Decimal(critical),
        runway_threshold=runway,
        spend_rate=None if rate is None else Decimal(rate),
    )


def test_under_the_warning_or_the_critical_level_is_low():
    assert levels.low(account("999", threshold="1000"), NOW)
    assert levels.low(account("99", critical="100"), NOW)
    assert not levels.low(account("1000", threshold="1000", critical="100"), NOW)
    assert not levels.low(account(None, threshold="1000"), NOW)


def test_a_runway_under_its_threshold_is_low_whatever_the_amount():
    # 1,000 at 200 a day lasts 5 days.
    assert levels.low(account("1000", runway=7, rate="200"), NOW)
    assert not levels.low(account("1000", runway=3, rate="200"), NOW)
    assert not levels.low(account("1000", runway=7), NOW)  # no spend known: no runway


def test_recovery_needs_the_chats_margin_above_every_level():
    assert not levels.recovered(CHAT, account("1010", threshold="1000"), NOW)  # within 2%
    assert levels.recovered(CHAT, account("1020", threshold="1000"), NOW)
    assert not levels.recovered(CHAT, account("1020", threshold="1000", critical="1010"), NOW)
    assert not levels.critical_recovered(CHAT, account("101", critical="100"))
    assert levels.critical_recovered(CHAT, account("102", critical="100"))


def test_the_margin_is_at_least_one_unit_so_a_zero_threshold_does_not_flap():
    assert not levels.recovered(CHAT, account("0.5", threshold="0"), NOW)
    assert levels.recovered(CHAT, account("1", threshold="0"), NOW)
    assert not levels.critical_recovered(CHAT, account("20.5", critical="20"))  # 2% is 0.4
    no_margin = SimpleNamespace(hysteresis_percent=Decimal(0))  # /margin 0: none at all
    assert levels.recovered(no_margin, account("0", threshold="0"), NOW)
