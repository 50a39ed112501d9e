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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from itertools import pairwise
from operator import itemgetter
from typing import NamedTuple

from bot.storage.history import Sample

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
DAY = timedelta(days=1)
SECONDS_PER_DAY = Decimal(86400)
MICROSECOND = timedelta(microseconds=1)
MICROSECONDS_PER_DAY = DAY // MICROSECOND
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
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


# A move between consecutive readings: its start and end in microseconds since EPOCH, and the
# change of the balance. A study tallies a week of moves three times: datetime arithmetic on
# each, and making a named tuple or a dataclass of each, cost most of a check's CPU.
_Move = tuple[int, int, Decimal]


class _Tally(NamedTuple):
    spend: Decimal
    seen: int  # microseconds of history that could show spend: no top-up in them


def top_ups(samples: Sequence[Sample], *, min_amount: Decimal = CENT) -> list[TopUp]:
    """Every rise of at least `min_amount` between consecutive readings, oldest first."""
    return [
        TopUp(at=after.taken_at, amount=after.balance - before.balance)
        for before, after in pairwise(_readings(samples))
        if after.balance - before.balance >= min_amount
    ]


class Study(NamedTuple):
    """What a week of history says: the spend rate (see `spend_rate`), and the last day's spend
    when it is an anomaly (see `is_anomalous`), else None."""

    rate: Decimal | None
    anomaly: Decimal | None


def study(
    samples: Sequence[Sample], now: datetime, *, factor: Decimal, minimum: Decimal | None
) -> Study:
    """`spend_rate` and `is_anomalous` (None `minimum`: not looked for) at once: a check that
    takes a sample asks both of the same week, whose readings are worked out once."""
    readings = _readings(samples)
    moves = _pairs(readings)
    anomaly = None if minimum is None else _anomaly(readings, moves, now, factor, minimum)
    return Study(_rate(readings, moves, now, 7), anomaly)


def spend_rate(samples: Sequence[Sample], now: datetime, *, days: int = 7) -> Decimal | None:
    """Spend per day over the last `days` days; None with under a day or three readings of it."""
    readings = _readings(samples)
    return _rate(readings, _pairs(readings), now, days)


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
    return _tally(_pairs(_readings(samples)), start, end).spend.quantize(CENT, ROUND_HALF_UP)


def is_anomalous(
    samples: Sequence[Sample],
    now: datetime,
    *,
    factor: Decimal = Decimal(3),
    minimum: Decimal,
) -> bool:
    """The last day spent over `factor` times the daily average of the week before, and over
    `minimum`; False while there are under two days of history before the last day."""
    readings = _readings(samples)
    return _anomaly(readings, _pairs(readings), now, factor, minimum) is not None


def _rate(readings: list[Sample], moves: list[_Move], now: datetime, days: int) -> Decimal | None:
    start = now - timedelta(days=days)
    in_window = sum(1 for reading in readings if start <= reading.taken_at <= now)
    if in_window < MIN_RATE_SAMPLES:
        return None  # a new account's first checks, or a week with hardly a reading
    tally = _tally(moves, start, now)
    if tally.seen < MIN_RATE_HISTORY // MICROSECOND:
        return None
    return _per_day(tally).quantize(CENT, ROUND_HALF_UP)


def _anomaly(
    readings: list[Sample], moves: list[_Move], now: datetime, factor: Decimal, minimum: Decimal
) -> Decimal | None:
    """The last day's spend if an anomaly (see `is_anomalous`), else None."""
    day_start = now - DAY
    if not readings or readings[0].taken_at > day_start - MIN_TRAILING_HISTORY:
        return None  # too little history for the trailing week, whatever it shows
    recent = _tally(moves, day_start, now)
    trailing = _tally(moves, day_start - TRAILING_WINDOW, day_start)
    if trailing.seen < MIN_TRAILING_HISTORY // MICROSECOND:
        return None
    if recent.spend > factor * _per_day(trailing) and recent.spend > minimum:
        return recent.spend.quantize(CENT, ROUND_HALF_UP)
    return None


def _readings(samples: Sequence[Sample]) -> list[Sample]:
    """The samples by time, one per instant (the last given wins), bad readings dropped."""
    by_time = {sample.taken_at: sample for sample in sorted(samples, key=itemgetter(0))}
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


def _pairs(readings: list[Sample]) -> list[_Move]:
    times = [_micros(reading.taken_at) for reading in readings]
    return [
        (times[i - 1], times[i], readings[i].balance - readings[i - 1].balance)
        for i in range(1, len(readings))
    ]


def _tally(moves: list[_Move], start: datetime, end: datetime) -> _Tally:
    """Spend and spend-showing time inside [start, end], moves on its edges shared by time.
    A move wholly inside adds its fall as it is; only the edges' shares take a division."""
    window_start, window_end = _micros(start), _micros(end)
    spend = Decimal(0)
    seen = 0
    for move_start, move_end, change in moves:
        if change > 0:
            continue
        low = move_start if move_start > window_start else window_start
        high = move_end if move_end < window_end else window_end
        if high <= low:
            continue
        inside, whole = high - low, move_end - move_start
        spend -= change if inside == whole else change * inside / whole
        seen += inside
    return _Tally(spend=spend, seen=seen)


def _per_day(tally: _Tally) -> Decimal:
    # One division, so a whole-cent rate comes out exact rather than 99.99999....
    return tally.spend * MICROSECONDS_PER_DAY / tally.seen


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND
