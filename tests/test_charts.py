import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import matplotlib.pyplot as plt
import pytest

from bot.charts import ChartLabels, Series, render_history
from bot.forecast import Sample, runway, spend_rate, top_ups

NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def account(name: str, per_day: int, *, days: int = 10, top_up: int = 0) -> Series:
    """Hourly readings spending `per_day`, with `top_up` paid in four days ago."""
    hours = days * 24
    samples = [
        Sample(
            NOW - (hours - h) * timedelta(hours=1),
            Decimal(3000) - Decimal(per_day) * h / 24 + (top_up if h >= hours - 4 * 24 else 0),
        )
        for h in range(hours + 1)
    ]
    rate = spend_rate(samples, NOW)
    return Series(
        name=name,
        currency="RUB",
        samples=samples,
        threshold=Decimal("1000.50"),
        top_ups=top_ups(samples),
        runway=runway(samples[-1].balance, rate, NOW),
    )


def size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which always comes first."""
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_one_account():
    png = render_history([account("Main", 150, top_up=2500)], locale="en", title="Balances")
    width, height = size(png)
    assert width >= 800
    assert height >= 500
    assert plt.get_fignums() == []


def test_three_accounts_stack_on_one_image():
    series = [
        account("Main", 150, top_up=2500),
        account("Marketing", 40),
        account("Backup", 0),
    ]
    one = size(render_history(series[:1], locale="en", title="Balances"))
    three = size(render_history(series, locale="en", title="Balances"))
    assert three[0] == one[0]
    assert three[1] > 2 * one[1]


def test_many_accounts_keep_the_image_a_phone_screen_long():
    series = [account(f"Account {i}", 100) for i in range(8)]
    width, height = size(render_history(series, locale="en", title="Balances"))
    assert height <= 4 * width


def test_no_history_yet(tmp_path):
    empty = Series(name="New", currency=None, samples=[], threshold=None, top_ups=[], runway=None)
    labels = ChartLabels(no_history="Истории пока нет")
    assert size(render_history([empty], locale="ru", title="Баланс", labels=labels))
    mixed = [account("Main", 150), empty]
    assert size(render_history(mixed, locale="ru", title="Баланс", labels=labels))


def test_russian_labels_and_numbers():
    labels = ChartLabels(
        balance="Баланс",
        threshold="Порог",
        top_up="Пополнение",
        forecast="Прогноз",
        no_history="Истории пока нет",
    )
    png = render_history(
        [account("Основной", 150, top_up=2500)], locale="ru", title="Балансы", labels=labels
    )
    assert size(png)[0] >= 800
    assert plt.get_fignums() == []


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match="no accounts"):
        render_history([], locale="en", title="Balances")
