import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import matplotlib.pyplot as plt
import pytest

from bot.alerting.forecast import runway, study, top_ups
from bot.storage.history import Sample
from bot.telegram.charts import ChartLabels, Series, render_history

NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CENT = Decimal("0.01")
RUSSIAN = ChartLabels(
    balance="Баланс",
    threshold="Порог",
    top_up="Пополнение",
    forecast="Прогноз",
    no_history="Истории пока нет",
)
EMPTY = Series(name="New", currency=None, samples=[], threshold=None, top_ups=[], runway=None)


def account(name: str, per_day: int, *, days: int = 10, top_up: int = 0) -> Series:
    """Hourly readings in whole cents spending `per_day`, with `top_up` paid in 4 days ago."""
    hours = days * 24
    samples = [
        Sample(
            NOW - (hours - h) * timedelta(hours=1),
            (Decimal(3000) - Decimal(per_day) * h / 24).quantize(CENT)
            + (top_up if h >= hours - 4 * 24 else 0),
        )
        for h in range(hours + 1)
    ]
    return Series(
        name=name,
        currency="RUB",
        samples=samples,
        threshold=Decimal("1000.50"),
        top_ups=top_ups(samples),
        runway=runway(samples[-1].balance, study(samples, NOW).rate, NOW),
    )


def size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which always comes first."""
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_one_account_is_a_phone_sized_picture():
    png = render_history([account("Main", 150, top_up=2500)], locale="en", title="Balances")
    assert size(png) == (1200, 675)
    assert plt.get_fignums() == []


def test_three_accounts_stack_on_one_image():
    series = [account("Main", 150, top_up=2500), account("Marketing", 40), account("Spare", 0)]
    assert size(render_history(series, locale="en", title="Balances")) == (1200, 3 * 675)
    assert plt.get_fignums() == []


def test_past_four_accounts_the_panels_shrink():
    series = [account(f"Account {i}", 100, days=2) for i in range(5)]
    assert size(render_history(series, locale="en", title="Balances")) == (1200, 4 * 675)


def test_no_history_yet():
    assert size(render_history([EMPTY], locale="en", title="Balances"))[0] == 1200
    mixed = [account("Основной", 150, days=2), EMPTY]
    width, height = size(render_history(mixed, locale="ru", title="Балансы", labels=RUSSIAN))
    assert width == 1200
    assert 675 < height < 2 * 675  # the empty panel takes less room
    assert plt.get_fignums() == []


def test_russian_labels_and_numbers():
    png = render_history(
        [account("Основной", 150, top_up=2500)], locale="ru", title="Балансы", labels=RUSSIAN
    )
    assert size(png)[0] >= 800


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match="no accounts"):
        render_history([], locale="en", title="Balances")
