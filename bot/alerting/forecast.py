"""How fast an account spends and when it runs dry, from its balance history alone.

Everything is read off the moves between consecutive readings. A fall is spend; a rise is a
top-up, and its stretch of time is left out of the rate too, because whatever was spent during
it is hidden inside the rise (counting the time but not the spend would understate the rate).
Spend in a move that straddles a window edge is shared out in proportion to time, so gaps in
the history (the bot was down, SMSC did not answer) change nothing: a two-day hole is just one
long move whose fall is the spend of those two days. Rates and spends are estimates and come
rounded to the cent.

A single bad reading must not look like spend and a top-up. The rule: a reading is dropped
when the move into it and the move out of it go in opposite directions and the move out lands
back within 10 % (of the move in) of where the move in started. So 1000, 10, 1000 drops the 10,
1000, 5000, 1000 drops the 5000, and so does a charge refunded by the next reading. The first
and last readings have no neighbour on one side and are always kept: a bogus last reading
counts as spend until the next reading shows it up. The price of the rule: a real top-up that
happens to match the previous reading's spend within 10 % is also taken for noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from itertools import pairwise

from bot.storage.history import Sample

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
DAY = timedelta(days=1)
SECONDS_PER_DAY = Decimal(86400)
REVERSAL_TOLERANCE = Decimal("0.1")
# Beyond a century the forecast means nothing, and datetime ends at year 9999.
MAX_RUNWAY_DAYS = Decimal(36500)
MIN_RATE_HISTORY = DAY
MIN_RATE_SAMPLES = 3
MIN_TRAILING_HISTORY = 2 * DAY
TRAILING_WINDOW = 7 * DAY


@dataclass(frozen=True)
class TopUp:
    at: datetime  # the reading that first showed the money
    amount: Decimal  # > 0; net of whatever was spent since the reading before


@dataclass(frozen=True)
class Runway:
    days: Decimal  # rounded down to 0.1 day
    until: datetime  # now + days: when the balance reaches 0 at the current rate (or a bit before)


@dataclass(frozen=True)
class _Move:
    start: datetime
    end: datetime
    change: Decimal


@dataclass(frozen=True)
class _Tally:
    spend: Decimal
    seen: Decimal  # seconds of history that could show spend: no top-up in them


def top_ups(samples: Sequence[Sample], *, min_amount: Decimal = CENT) -> list[TopUp]:
    """Every rise of at least `min_amount` between consecutive readings, oldest first."""
    return [
        TopUp(at=move.end, amount=move.change)
        for move in _moves(samples)
        if move.change >= min_amount
    ]


def spend_rate(samples: Sequence[Sample], now: datetime, *, days: int = 7) -> Decimal | None:
    """Spend per day over the last `days` days; None with under a day or three readings of it."""
    if len(samples) < MIN_RATE_SAMPLES:
        return None  # too few, whatever their times: a new account's first checks
    start = now - timedelta(days=days)
    readings = _readings(samples)
    in_window = sum(1 for reading in readings if start <= reading.taken_at <= now)
    if in_window < MIN_RATE_SAMPLES:
        return None
    tally = _tally(_pairs(readings), start, now)
    if tally.seen < _seconds(MIN_RATE_HISTORY):
        return None
    return _per_day(tally).quantize(CENT, ROUND_HALF_UP)


def runway(balance: Decimal, rate: Decimal | None, now: datetime) -> Runway | None:
    """How long `balance` lasts at `rate` a day; None when nothing is being spent."""
    if rate is None or rate <= 0:
        return None
    if balance <= 0:
        return Runway(days=Decimal(0), until=now)
    days = min(balance / rate, MAX_RUNWAY_DAYS).quantize(TENTH, ROUND_FLOOR)
    # A tenth of a day is a whole number of seconds, so `until` is exactly now + days.
    return Runway(days=days, until=now + timedelta(seconds=int(days * SECONDS_PER_DAY)))


def spend_between(samples: Sequence[Sample], start: datetime, end: datetime) -> Decimal:
    """Money spent between `start` and `end`: the falls, without top-ups or bad readings."""
    return _tally(_moves(samples), start, end).spend.quantize(CENT, ROUND_HALF_UP)


def is_anomalous(
    samples: Sequence[Sample],
    now: datetime,
    *,
    factor: Decimal = Decimal(3),
    minimum: Decimal,
) -> bool:
    """The last day spent over `factor` times the daily average of the week before, and over
    `minimum`; False while there are under two days of history before the last day."""
    day_start = now - DAY
    if not samples or min(s.taken_at for s in samples) > day_start - MIN_TRAILING_HISTORY:
        return False  # too little history for the trailing week, whatever it shows
    moves = list(_moves(samples))
    recent = _tally(moves, day_start, now)
    trailing = _tally(moves, day_start - TRAILING_WINDOW, day_start)
    if trailing.seen < _seconds(MIN_TRAILING_HISTORY):
        return False
    return recent.spend > factor * _per_day(trailing) and recent.spend > minimum


def _readings(samples: Sequence[Sample]) -> list[Sample]:
    """The samples by time, one per instant (the last given wins), bad readings dropped."""
    by_time = {sample.taken_at: sample for sample in sorted(samples, key=lambda s: s.taken_at)}
    ordered = list(by_time.values())
    kept: list[Sample] = []
    for i, sample in enumerate(ordered):
        if 0 < i < len(ordered) - 1 and _is_reversed(kept[-1], sample, ordered[i + 1]):
            continue
        kept.append(sample)
    return kept


def _is_reversed(before: Sample, sample: Sample, after: Sample) -> bool:
    move_in = sample.balance - before.balance
    move_out = after.balance - sample.balance
    if move_in * move_out >= 0:
        return False
    return abs(after.balance - before.balance) <= REVERSAL_TOLERANCE * abs(move_in)


def _pairs(readings: list[Sample]) -> Iterator[_Move]:
    for before, after in pairwise(readings):
        yield _Move(before.taken_at, after.taken_at, after.balance - before.balance)


def _moves(samples: Sequence[Sample]) -> Iterator[_Move]:
    return _pairs(_readings(samples))


def _tally(moves: Iterable[_Move], start: datetime, end: datetime) -> _Tally:
    """Spend and spend-showing time inside [start, end], moves on its edges shared by time."""
    spend = Decimal(0)
    seen = Decimal(0)
    for move in moves:
        overlap = min(move.end, end) - max(move.start, start)
        if overlap <= timedelta(0) or move.change > 0:
            continue
        inside = _seconds(overlap)
        spend += -move.change * inside / _seconds(move.end - move.start)
        seen += inside
    return _Tally(spend=spend, seen=seen)


def _per_day(tally: _Tally) -> Decimal:
    # One division, so a whole-cent rate comes out exact rather than 99.99999....
    return tally.spend * SECONDS_PER_DAY / tally.seen


def _seconds(span: timedelta) -> Decimal:
    return Decimal(span // timedelta(microseconds=1)) / 1_000_000
