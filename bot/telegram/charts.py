"""Balance history as one PNG for Telegram: a panel per account, readable on a phone.

Only matplotlib's object API is used (a bare `Figure`, saved through Agg), never pyplot: no
global figure registry to leak into, and each call draws its own figure, which is what
matplotlib asks of code that renders from worker threads.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import numpy as np
from babel.dates import format_skeleton
from babel.numbers import format_decimal
from matplotlib.axes import Axes
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from bot.alerting.forecast import MAX_RUNWAY_DAYS, Runway, TopUp
from bot.storage.history import Sample
from bot.telegram.formatting import format_amount, needs_year

WIDTH = 8.0  # inches: 1200 px at DPI, about what Telegram shows a photo at
PANEL_HEIGHT = 4.5
# Past four accounts the panels get shorter rather than the image taller.
MAX_HEIGHT = 4 * PANEL_HEIGHT
EMPTY_PANEL_SHARE = 0.4
DPI = 150
FONT_SIZE = 12

BALANCE_COLOR = "tab:blue"
THRESHOLD_COLOR = "tab:red"
TOP_UP_COLOR = "tab:green"
FORECAST_COLOR = "tab:gray"

# strftime names months in the process's C locale, English, so other languages get numeric dates.
# The hour levels name the chat's zone ({zone}), the one the dates are drawn in.
# Levels: years, months, days, hours, minutes, seconds between ticks.
_ENGLISH_DATES = {
    "zero_formats": ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"],
    "offset_formats": [
        "",
        "%Y",
        "%b %Y",
        "%b %d, %Y {zone}",
        "%b %d, %Y {zone}",
        "%b %d, %Y %H:%M {zone}",
    ],
}
_NUMERIC_DATES = {
    "formats": ["%Y", "%m.%Y", "%d.%m", "%H:%M", "%H:%M", "%S.%f"],
    "zero_formats": ["", "%Y", "%d.%m", "%d.%m", "%H:%M", "%H:%M"],
    "offset_formats": [
        "",
        "%Y",
        "%m.%Y",
        "%d.%m.%Y {zone}",
        "%d.%m.%Y {zone}",
        "%d.%m.%Y %H:%M {zone}",
    ],
}


@dataclass(frozen=True)
class ChartLabels:
    """The words on a chart; the caller passes them translated."""

    balance: str = "Balance"
    threshold: str = "Threshold"
    top_up: str = "Top-up"
    forecast: str = "Forecast"
    no_history: str = "No history yet"


ENGLISH = ChartLabels()


@dataclass(frozen=True)
class Series:
    name: str  # account name, the panel's title
    currency: str | None
    samples: Sequence[Sample]
    threshold: Decimal | None
    top_ups: Sequence[TopUp]
    # Drawn from the last sample towards zero at runway.until, cut short if that is far off.
    runway: Runway | None


def render_history(
    series: Sequence[Series],
    *,
    locale: str,
    tz: str,
    title: str,
    now: datetime,
    labels: ChartLabels = ENGLISH,
) -> bytes:
    """A PNG of each account's balance over time, panels stacked on a shared date axis; the
    axis and the forecast's date in the chat's time zone `tz`, as the caption under it, and
    that date with its year as there (far from `now`)."""
    if not series:
        raise ValueError("no accounts to draw")
    # A panel that only says "no history yet" needs a fraction of the room of a chart.
    shares = [1.0 if account.samples else EMPTY_PANEL_SHARE for account in series]
    panel_height = min(PANEL_HEIGHT, MAX_HEIGHT / sum(shares))
    figure = Figure(figsize=(WIDTH, panel_height * sum(shares)), dpi=DPI, layout="constrained")
    figure.suptitle(title, fontsize=FONT_SIZE + 3, fontweight="bold")
    axes = figure.subplots(len(series), 1, sharex=True, squeeze=False, height_ratios=shares)[:, 0]
    for ax, account in zip(axes, series, strict=True):
        _draw_panel(ax, account, locale, tz, now, labels)
    if any(account.samples for account in series):
        _date_axis(axes[-1], locale, tz)
    else:
        axes[-1].set_xticks([])
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _draw_panel(
    ax: Axes, account: Series, locale: str, tz: str, now: datetime, labels: ChartLabels
) -> None:
    ax.set_title(account.name, loc="left", fontsize=FONT_SIZE + 1)
    ax.tick_params(labelsize=FONT_SIZE - 1)
    if not account.samples:
        ax.text(
            0.5,
            0.5,
            labels.no_history,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=FONT_SIZE,
            color="gray",
        )
        ax.set_yticks([])
        return
    samples = sorted(account.samples, key=lambda s: s.taken_at)
    times = [s.taken_at for s in samples]
    balances = [float(s.balance) for s in samples]
    ax.plot(times, balances, color=BALANCE_COLOR, linewidth=2, label=labels.balance)
    if account.threshold is not None:
        ax.axhline(
            float(account.threshold),
            color=THRESHOLD_COLOR,
            linestyle="--",
            linewidth=1.5,
            label=f"{labels.threshold}: {format_amount(account.threshold, locale)}",
        )
    if account.top_ups:
        _draw_top_ups(ax, account.top_ups, samples, locale, labels)
    if account.runway is not None:
        _draw_forecast(ax, samples, account.runway, locale, tz, now, labels)
    ax.yaxis.set_major_formatter(
        FuncFormatter(lambda value, _pos: format_decimal(value, "#,##0.##", locale=locale))
    )
    ax.set_ylabel(
        f"{labels.balance}, {account.currency}" if account.currency else labels.balance,
        fontsize=FONT_SIZE,
    )
    ax.margins(y=0.15)  # room for the top-up amounts above their markers
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=FONT_SIZE - 2, framealpha=0.85)


def _draw_top_ups(
    ax: Axes, top_ups: Sequence[TopUp], samples: list[Sample], locale: str, labels: ChartLabels
) -> None:
    # Markers sit on the balance line, even for a top-up between two readings.
    at = date2num([t.at for t in top_ups])
    heights = np.interp(
        at, date2num([s.taken_at for s in samples]), [float(s.balance) for s in samples]
    )
    ax.scatter(at, heights, marker="^", s=90, color=TOP_UP_COLOR, zorder=3, label=labels.top_up)
    for top_up, x, y in zip(top_ups, at, heights, strict=True):
        ax.annotate(
            f"+{format_amount(top_up.amount, locale)}",
            (x, y),
            xytext=(0, 9),
            textcoords="offset points",
            ha="center",
            fontsize=FONT_SIZE - 2,
            color=TOP_UP_COLOR,
        )


def _draw_forecast(
    ax: Axes,
    samples: list[Sample],
    runway: Runway,
    locale: str,
    tz: str,
    now: datetime,
    labels: ChartLabels,
) -> None:
    last = samples[-1]
    # Already run out, or overdrawn (a line from below 0 rose "to 0"): nothing ahead to draw.
    if last.balance <= 0 or runway.until <= last.taken_at:
        return
    if runway.days >= MAX_RUNWAY_DAYS:  # where the forecast stops: its date means nothing
        return
    # Looking further ahead than the history goes back would squash the history into a sliver;
    # the legend still gives the date the line is heading for.
    reach = max(last.taken_at - samples[0].taken_at, timedelta(days=1))
    end = min(runway.until, last.taken_at + reach)
    remaining = float(last.balance) * (1 - (end - last.taken_at) / (runway.until - last.taken_at))
    skeleton = "yMMMd" if needs_year(runway.until, now) else "MMMd"
    zero_on = format_skeleton(skeleton, runway.until.astimezone(ZoneInfo(tz)), locale=locale)
    ax.plot(
        [last.taken_at, end],
        [float(last.balance), remaining],
        color=FORECAST_COLOR,
        linestyle=":",
        linewidth=2.5,
        label=f"{labels.forecast}: 0 — {zero_on}",
    )


def _date_axis(ax: Axes, locale: str, tz: str) -> None:
    zone = ZoneInfo(tz)
    locator = AutoDateLocator(tz=zone)
    formats = _ENGLISH_DATES if locale.startswith("en") else _NUMERIC_DATES
    # A zone's name has no "%" to be read as a strftime directive.
    named = {level: [text.format(zone=tz) for text in texts] for level, texts in formats.items()}
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, tz=zone, **named))
