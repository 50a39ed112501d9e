"""The alerting tests' injected clock and monitor (a pytest plugin: tests/conftest.py)."""

from datetime import UTC, datetime, timedelta

import pytest

from bot.alerting.monitoring import Monitor
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n

START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def monitor(clock):
    return Monitor(TelegramRenderer(create_i18n()), now=clock)
