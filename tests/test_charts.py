import struct
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import matplotlib.pyplot as plt
import pytest
from matplotlib.dates import num2date
from matplotlib.figure import Figure

from bot.alerting.forecast import runway, study, top_ups
from bot.storage.history import Sample
from bot.telegram import charts
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
    png = render_history(
        [account("Main", 150, top_up=2500)], locale="en", tz="UTC", title="Balances", now=NOW
    )
    assert size(png) == (1200, 675)
    assert plt.get_fignums() == []


def test_three_accounts_stack_on_one_image():
    series = [account("Main", 150, top_up=2500), account("Marketing", 40), account("Spare", 0)]
    assert size(render_history(series, locale="en", tz="UTC", title="Balances", now=NOW)) == (
        1200,
        3 * 675,
    )
    assert plt.get_fignums() == []


def test_past_four_accounts_the_panels_shrink():
    series = [account(f"Account {i}", 100, days=2) for i in range(5)]
    assert size(render_history(series, locale="en", tz="UTC", title="Balances", now=NOW)) == (
        1200,
        4 * 675,
    )


def test_no_history_yet():
    assert (
        size(render_history([EMPTY], locale="en", tz="UTC", title="Balances", now=NOW))[0] == 1200
    )
    mixed = [account("Основной", 150, days=2), EMPTY]
    width, height = size(
        render_history(mixed, locale="ru", tz="UTC", title="Балансы", labels=RUSSIAN, now=NOW)
    )
    assert width == 1200
    assert 675 < height < 2 * 675  # the empty panel takes less room
    assert plt.get_fignums() == []


def test_russian_labels_and_numbers():
    png = render_history(
        [account("Основной", 150, top_up=2500)],
        locale="ru",
        tz="UTC",
        title="Балансы",
        labels=RUSSIAN,
        now=NOW,
    )
    assert size(png)[0] >= 800


@pytest.fixture
def figures(monkeypatch) -> list[Figure]:
    """The figures render_history draws, kept to read what is written on them."""
    kept = []

    class Kept(Figure):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kept.append(self)

    monkeypatch.setattr(charts, "Figure", Kept)
    return kept


@pytest.mark.parametrize(("tz", "date"), [("UTC", "Dec 5"), ("America/Los_Angeles", "Dec 4")])
def test_forecast_date_is_the_chats_as_in_the_caption(figures, tz, date):
    # 1,000 at 1,250 a day from noon UTC on 4 Dec: zero at 07:12 UTC on 5 Dec, the evening
    # before in Los Angeles.
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    samples = [Sample(now - timedelta(days=2), Decimal(3400)), Sample(now, Decimal(1000))]
    shop = Series(
        name="shop",
        currency="RUB",
        samples=samples,
        threshold=None,
        top_ups=[],
        runway=runway(Decimal(1000), Decimal(1250), now),
    )
    render_history([shop], locale="en", tz=tz, title="Balances", now=now)
    [figure] = figures
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert f"Forecast: 0 — {date}" in legend


def forecast_legend(figures, balance: str, per_day: str) -> list[str]:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    samples = [Sample(now - timedelta(days=2), Decimal(balance) + 2), Sample(now, Decimal(balance))]
    shop = Series(
        name="shop",
        currency="RUB",
        samples=samples,
        threshold=None,
        top_ups=[],
        runway=runway(Decimal(balance), Decimal(per_day), now),
    )
    render_history([shop], locale="en", tz="UTC", title="Balances", now=now)
    legend = figures[-1].axes[0].get_legend().get_texts()
    return [text.get_text() for text in legend if text.get_text().startswith("Forecast")]


def test_a_forecast_over_300_days_ahead_gives_its_year_and_a_century_none(figures):
    # As the texts: the year only where the day and month could be another year's.
    assert forecast_legend(figures, "29000", "100") == ["Forecast: 0 — Sep 20"]
    assert forecast_legend(figures, "50000", "100") == ["Forecast: 0 — Apr 17, 2028"]
    # At the century the forecast stops at, its date (10 Nov 2126) means nothing.
    assert forecast_legend(figures, "1000000", "0.01") == []


def test_an_overdrawn_account_has_no_forecast_line(figures):
    # From 150 to -50 over two days, the last reading 10 minutes ago: no line rising to 0.
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    samples = [
        Sample(now - timedelta(hours=48 - h, minutes=10), Decimal(150) - Decimal(200) * h / 48)
        for h in range(49)
    ]
    overdrawn = Series(
        name="overdraft",
        currency="RUB",
        samples=samples,
        threshold=Decimal(100),
        top_ups=top_ups(samples),
        runway=runway(samples[-1].balance, Decimal(100), now),
    )
    render_history([overdrawn], locale="en", tz="UTC", title="Balances", now=now)
    [figure] = figures
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend == ["Balance", "Threshold: 100.00"]


@pytest.mark.parametrize(("locale", "day"), [("en", "Mar 11, 2025"), ("ru", "11.03.2025")])
def test_time_axis_is_in_the_chats_zone(figures, locale, day):
    # A day of hourly readings up to noon UTC, 15:00 in Moscow: the hours under the chart are
    # Moscow's, as in the caption and every other answer of the bot, and it says so; the
    # forecast runs on to the next day, the one the axis ends on.
    render_history(
        [account("Main", 150, days=1)], locale=locale, tz="Europe/Moscow", title="", now=NOW
    )
    [figure] = figures
    axis = figure.axes[0].xaxis
    moscow = ZoneInfo("Europe/Moscow")
    ticks = zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=True)
    hours = [(label.get_text(), at) for at, label in ticks if ":" in label.get_text()]
    assert hours
    assert [shown for shown, _at in hours] == [
        num2date(at, tz=moscow).strftime("%H:%M") for _shown, at in hours
    ]
    assert axis.get_offset_text().get_text() == f"{day} Europe/Moscow"


def test_nothing_to_draw_is_an_error():
    with pytest.raises(ValueError, match="no accounts"):
        render_history([], locale="en", tz="UTC", title="Balances", now=NOW)
