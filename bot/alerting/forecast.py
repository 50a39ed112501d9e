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

from bisect import bisect_left, bisect_right
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
RATE_WINDOW = 7 * DAY
MIN_TRAILING_HISTORY = 2 * DAY
TRAILING_WINDOW = 7 * DAY


@dataclass(frozen=True)
class TopUp:
    at: datetime  # the reading that first showed the money
    amount: Decimal  # > 0; net of whatever was spent since the reading before


@dataclass(frozen=True)
class Runway:
    days: Decimal  # rounded down to 0.1 day
    until: datetime  # when the balance reaches 0 at the current rate, to the second


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
    """What a week of history says.

    `rate`: spend per day over the last week; None with under a day or three readings of it.
    `anomaly`: the last day's spend when it is over `factor` times the daily average of the
    week before, and at least `minimum`; None otherwise, while there are under two days of history
    before the last day, and when `minimum` is None (not looked for)."""

    rate: Decimal | None
    anomaly: Decimal | None


def study(
    samples: Sequence[Sample],
    now: datetime,
    *,
    factor: Decimal = Decimal(3),
    minimum: Decimal | None = None,
) -> Study:
    """The rate and the anomaly at once (see `Study`): a check that takes a sample asks both
    of the same week, whose readings are worked out once."""
    readings = _readings(samples)
    # An anomaly is looked for with a minimum, and only with a reading from before the two days
    # ahead of the last one: with none, the trailing week cannot show its two days of history.
    anomalies = (
        minimum is not None
        and bool(readings)
        and readings[0].taken_at <= now - DAY - MIN_TRAILING_HISTORY
    )
    if len(readings) < MIN_RATE_SAMPLES and not anomalies:
        # An account's first days, whose every check may take a sample and be studied: no
        # moves to work out for no answer.
        return Study(None, None)
    moves = _Moves(readings)
    anomaly = _anomaly(moves, now, factor, minimum) if anomalies else None
    return Study(_rate(moves, now), anomaly)


def runway(balance: Decimal, rate: Decimal | None, now: datetime) -> Runway | None:
    """How long `balance` lasts at `rate` a day; None when nothing is being spent."""
    if rate is None or rate <= 0:
        return None
    if balance <= 0:
        return Runway(days=Decimal(0), until=now)
    days = min(balance / rate, MAX_RUNWAY_DAYS)
    # `until` to the second, not to `days`' tenth: under a day the hour it comes is told, and
    # a tenth of a day (2.4 h) early is no hour to tell.
    return Runway(
        days=days.quantize(TENTH, ROUND_FLOOR),
        until=now + timedelta(seconds=int(days * SECONDS_PER_DAY)),
    )


def spend_between(samples: Sequence[Sample], start: datetime, end: datetime) -> Decimal:
    """Money spent between `start` and `end`: the falls, without top-ups or bad readings."""
    return _Moves(_readings(samples)).tally(start, end).spend.quantize(CENT, ROUND_HALF_UP)


def _rate(moves: _Moves, now: datetime) -> Decimal | None:
    start = now - RATE_WINDOW
    if moves.readings_between(start, now) < MIN_RATE_SAMPLES:
        return None  # a new account's first checks, or a week with hardly a reading
    tally = moves.tally(start, now)
    if tally.seen < MIN_RATE_HISTORY // MICROSECOND:
        return None
    return _per_day(tally).quantize(CENT, ROUND_HALF_UP)


def _anomaly(moves: _Moves, now: datetime, factor: Decimal, minimum: Decimal) -> Decimal | None:
    """The last day's spend if an anomaly (see `Study`), else None."""
    day_start = now - DAY
    recent = moves.tally(day_start, now)
    trailing = moves.tally(day_start - TRAILING_WINDOW, day_start)
    if trailing.seen < MIN_TRAILING_HISTORY // MICROSECOND:
        return None
    # "At least" the minimum, as /anomaly says: a day costing exactly the minimum counts.
    if recent.spend > factor * _per_day(trailing) and recent.spend >= minimum:
        return recent.spend.quantize(CENT, ROUND_HALF_UP)
    return None


def _readings(samples: Sequence[Sample]) -> list[Sample]:
    """The samples by time, one per instant (the last given wins), bad readings dropped."""
    by_time = {sample.taken_at: sample for sample in sorted(samples, key=itemgetter(0))}
    ordered = list(by_time.values())
    kept: list[Sample] = []
    last = len(ordered) - 1
    for i, sample in enumerate(ordered):
        if 0 < i < last:
            before, balance, after = kept[-1].balance, sample.balance, ordered[i + 1].balance
            # Compared first, here: most readings go on in the direction of the one before.
            if (before < balance > after or before > balance < after) and _is_reversed(
                before, balance, after
            ):
                continue
        kept.append(sample)
    return kept


def _is_reversed(before: Decimal, balance: Decimal, after: Decimal) -> bool:
    """Whether a reading that turned back lands back near where it began (see the module)."""
    return abs(after - before) <= REVERSAL_TOLERANCE * abs(balance - before)


class _Moves:
    """The moves between consecutive readings, with running totals of their falls: a window's
    tally is then the difference of two totals with its edge moves' shares, where a study asks
    three windows of a week of moves. Times are microseconds since EPOCH: datetime arithmetic
    for each move cost most of a check's CPU."""

    def __init__(self, readings: list[Sample]) -> None:
        # Inline, not by _micros: a call for each of hundreds of readings cost a third more.
        self._times = [(reading.taken_at - EPOCH) // MICROSECOND for reading in readings]
        self._starts, self._ends = self._times[:-1], self._times[1:]
        self._changes = [after.balance - before.balance for before, after in pairwise(readings)]
        # What fell and over how long, before each move: a rise hides whatever was spent
        # during it, so its time counts no more than its change.
        self._spent, self._seen = [Decimal(0)], [0]
        for start, end, change in zip(self._starts, self._ends, self._changes, strict=True):
            fell = change <= 0
            self._spent.append(self._spent[-1] - change if fell else self._spent[-1])
            self._seen.append(self._seen[-1] + (end - start) if fell else self._seen[-1])

    def readings_between(self, start: datetime, end: datetime) -> int:
        return bisect_right(self._times, _micros(end)) - bisect_left(self._times, _micros(start))

    def tally(self, start: datetime, end: datetime) -> _Tally:
        """Spend and spend-showing time inside [start, end], moves on its edges shared by
        time."""
        low, high = _micros(start), _micros(end)
        first = bisect_right(self._ends, low)  # the first move to end inside
        last = bisect_left(self._starts, high)  # past the last to start inside
        if high <= low or first >= last:
            return _Tally(spend=Decimal(0), seen=0)
        spend = self._spent[last] - self._spent[first]
        seen = self._seen[last] - self._seen[first]
        for edge in {first, last - 1}:
            change = self._changes[edge]
            move_start, move_end = self._starts[edge], self._ends[edge]
            whole = move_end - move_start
            inside = min(move_end, high) - max(move_start, low)
            if change <= 0 and inside < whole:  # counted whole above: its share only
                spend += change - change * inside / whole
                seen -= whole - inside
        return _Tally(spend=spend, seen=seen)


def _per_day(tally: _Tally) -> Decimal:
    # One division, so a whole-cent rate comes out exact rather than 99.99999....
    return tally.spend * MICROSECONDS_PER_DAY / tally.seen


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND
