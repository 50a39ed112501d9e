import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from bot.alerting.forecast import (
    MAX_RUNWAY_DAYS,
    Runway,
    TopUp,
    runway,
    spend_between,
    study,
    top_ups,
)
from bot.storage.history import Sample

NOW = datetime(2025, 3, 10, 12, tzinfo=UTC)
START = Decimal(10000)
HOUR = timedelta(hours=1)


def hourly(balance_at: Callable[[int], Decimal], hours: int) -> list[Sample]:
    """A reading every hour for `hours` hours up to NOW, `balance_at(h)` at hour h."""
    return [Sample(NOW - (hours - h) * HOUR, balance_at(h)) for h in range(hours + 1)]


def steady(per_day: int, hours: int = 240) -> list[Sample]:
    return hourly(lambda h: START - Decimal(per_day) * h / 24, hours)


def with_balance(samples: list[Sample], index: int, balance: Decimal) -> list[Sample]:
    changed = list(samples)
    changed[index] = Sample(samples[index].taken_at, balance)
    return changed


def test_steady_spend_gives_its_rate_and_runway():
    rate = study(steady(100), NOW).rate
    assert rate == 100
    # Days to the tenth, down; the end to the second: 12.34 days on.
    assert runway(Decimal(1234), rate, NOW) == Runway(
        days=Decimal("12.3"), until=NOW + timedelta(days=12, hours=8, minutes=9, seconds=36)
    )


def test_top_ups_are_listed_and_leave_the_rate_alone():
    base = steady(240)  # 10 an hour, so every move is a whole number
    topped = [
        Sample(s.taken_at, s.balance + (5000 if s.taken_at >= NOW - 3 * 24 * HOUR else 0))
        for s in base
    ]
    topped = [
        Sample(s.taken_at, s.balance + (700 if s.taken_at >= NOW - 30 * HOUR else 0))
        for s in topped
    ]
    assert study(topped, NOW).rate == 240
    assert top_ups(topped) == [
        TopUp(at=NOW - 72 * HOUR, amount=Decimal(4990)),
        TopUp(at=NOW - 30 * HOUR, amount=Decimal(690)),
    ]
    assert top_ups(topped, min_amount=Decimal(1000)) == [
        TopUp(at=NOW - 72 * HOUR, amount=Decimal(4990))
    ]
    assert top_ups(base) == []


def test_a_hole_in_the_history_changes_nothing():
    samples = steady(100)
    hole = [s for s in samples if not NOW - 5 * 24 * HOUR < s.taken_at < NOW - 3 * 24 * HOUR]
    assert len(hole) == len(samples) - 47
    assert study(hole, NOW).rate == 100
    assert spend_between(hole, NOW - 6 * 24 * HOUR, NOW) == 600


def test_one_bad_reading_is_not_spend():
    samples = steady(100)
    dip = with_balance(samples, 200, Decimal(10))
    spike = with_balance(samples, 200, Decimal(99999))
    for noisy in (dip, spike):
        assert study(noisy, NOW).rate == 100
        assert top_ups(noisy) == []
        assert spend_between(noisy, NOW - 2 * 24 * HOUR, NOW) == 200


def test_the_example_flat_series_with_a_dip():
    samples = [
        Sample(NOW - h * 12 * HOUR, b)
        for h, b in zip(range(3, -1, -1), (1000, 1000, 10, 1000), strict=True)
    ]
    assert study(samples, NOW).rate == 0
    assert top_ups(samples) == []


def test_spend_then_a_bigger_top_up_is_both():
    samples = steady(240)
    samples = with_balance(samples, 200, samples[199].balance - 500)
    samples = samples[:201] + [Sample(s.taken_at, s.balance + 5000) for s in samples[201:]]
    assert spend_between(samples, samples[199].taken_at, samples[200].taken_at) == 500
    assert [t.at for t in top_ups(samples)] == [samples[201].taken_at]


def test_spend_is_shared_by_time_across_window_edges():
    samples = steady(240)
    assert spend_between(samples, NOW - 90 * timedelta(minutes=1), NOW) == 15
    assert spend_between(samples, NOW - 5 * HOUR, NOW - 3 * HOUR) == 20
    assert spend_between(samples, NOW, NOW + HOUR) == 0


def test_order_of_the_samples_does_not_matter():
    samples = steady(100)
    assert study(samples[::-1], NOW).rate == 100


def test_too_little_history_gives_no_rate():
    assert study(steady(100, hours=20), NOW).rate is None
    two_readings = [Sample(NOW - 3 * 24 * HOUR, START), Sample(NOW, START - 300)]
    assert study(two_readings, NOW).rate is None
    assert study([], NOW).rate is None
    old = steady(100)
    assert study(old, NOW + 30 * 24 * HOUR).rate is None


def test_nothing_spent_means_no_forecast():
    flat = hourly(lambda h: START, 72)
    assert study(flat, NOW).rate == 0
    assert runway(START, Decimal(0), NOW) is None
    assert runway(START, None, NOW) is None


def test_empty_account_has_run_out_now():
    assert runway(Decimal(0), Decimal(100), NOW) == Runway(days=Decimal(0), until=NOW)
    assert runway(Decimal(-5), Decimal(100), NOW) == Runway(days=Decimal(0), until=NOW)


def test_a_trickle_forecasts_a_century_at_most():
    forecast = runway(Decimal(10) ** 9, Decimal("0.01"), NOW)
    assert forecast is not None
    assert forecast.days == MAX_RUNWAY_DAYS


def burst(last_day_spend: int) -> list[Sample]:
    """100 a day for eight days, then `last_day_spend` in the last 24 hours."""

    def balance(h: int) -> Decimal:
        return START - (100 * Decimal(min(h, 192)) + last_day_spend * Decimal(max(h - 192, 0))) / 24

    return hourly(balance, 216)


def test_a_burst_of_spend_is_an_anomaly_when_over_the_minimum():
    assert study(burst(500), NOW, minimum=Decimal(200)).anomaly is not None
    assert study(burst(500), NOW, minimum=Decimal(1000)).anomaly is None
    assert study(burst(250), NOW, minimum=Decimal(200)).anomaly is None
    assert study(burst(250), NOW, factor=Decimal(2), minimum=Decimal(200)).anomaly is not None


def test_a_day_costing_exactly_the_minimum_is_an_anomaly():
    """/anomaly promises a warning for a day costing "at least" the minimum."""
    assert study(burst(500), NOW, minimum=Decimal(500)).anomaly == Decimal(500)
    assert study(burst(500), NOW, minimum=Decimal("500.01")).anomaly is None


def test_steady_spend_is_no_anomaly():
    assert study(steady(100), NOW, minimum=Decimal(0)).anomaly is None


def test_no_anomaly_without_two_days_before_the_last_day():
    short = [s for s in burst(500) if s.taken_at > NOW - 60 * HOUR]
    assert study(short, NOW, minimum=Decimal(200)).anomaly is None
    longer = [s for s in burst(500) if s.taken_at >= NOW - 72 * HOUR]
    assert study(longer, NOW, minimum=Decimal(200)).anomaly is not None


def test_two_readings_show_an_anomaly_only_with_one_three_days_old():
    # A new account's history is studied at its first checks too: too short, it says nothing.
    fresh = [Sample(NOW - 2 * HOUR, START), Sample(NOW, START - 300)]
    assert study(fresh, NOW, factor=Decimal("0.5"), minimum=Decimal(0)) == (None, None)
    # One move of four days: its last day against the three before it.
    old = [Sample(NOW - 4 * 24 * HOUR, START), Sample(NOW, START - 4000)]
    assert study(old, NOW, factor=Decimal("0.5"), minimum=Decimal(0)) == (None, Decimal(1000))


def test_spend_after_a_quiet_week_is_an_anomaly():
    quiet_then_spend = hourly(lambda h: START - 10 * Decimal(max(h - 192, 0)), 216)
    assert study(quiet_then_spend, NOW, minimum=Decimal(200)).anomaly is not None


# --- properties ---------------------------------------------------------------------------

minutes_apart = st.lists(st.integers(30, 360), min_size=10, max_size=60)


def readings(gaps: list[int], balances: list[Decimal]) -> list[Sample]:
    """Samples ending at NOW, `gaps` minutes apart."""
    times = [NOW]
    for gap in reversed(gaps):
        times.append(times[-1] - timedelta(minutes=gap))
    return [Sample(t, b) for t, b in zip(reversed(times), balances, strict=True)]


@given(
    gaps=minutes_apart,
    cents_a_minute=st.integers(0, 1000),
    at=st.integers(1, 10**6),
    extra=st.integers(1, 10**7),
)
def test_a_top_up_never_changes_the_rate(gaps, cents_a_minute, at, extra):
    per_minute = Decimal(cents_a_minute) / 100
    elapsed = [0]
    for gap in gaps:
        elapsed.append(elapsed[-1] + gap)
    balances = [START - per_minute * m for m in elapsed]
    before = readings(gaps, balances)
    # A top-up no bigger than the moves around it could be a refund or a bad reading (see the
    # module's rule); one at least twice all the spend never is.
    amount = 2 * (balances[0] - balances[-1]) + extra
    k = 1 + at % (len(balances) - 1)
    after = readings(gaps, [b + (amount if i >= k else 0) for i, b in enumerate(balances)])
    rate = study(after, NOW).rate
    # Its move no longer shows spend, which may leave too little history to tell.
    assert rate is None or rate == study(before, NOW).rate == per_minute * 1440
    assert [t.at for t in top_ups(after)] == [after[k].taken_at]


@given(
    gaps=minutes_apart,
    cents=st.lists(st.integers(-(10**8), 10**8), min_size=61, max_size=61),
    data=st.data(),
)
def test_spend_is_never_negative_and_order_does_not_matter(gaps, cents, data):
    samples = readings(gaps, [Decimal(c) / 100 for c in cents[: len(gaps) + 1]])
    start = NOW - timedelta(minutes=data.draw(st.integers(0, 30 * 24 * 60)))
    assert spend_between(samples, start, NOW) >= 0
    rate = study(samples, NOW).rate
    assert rate is None or rate >= 0
    shuffled = data.draw(st.permutations(samples))
    assert study(shuffled, NOW).rate == rate
    assert all(t.amount > 0 for t in top_ups(samples))


@given(
    balance=st.decimals(min_value="0.01", max_value=10**9, places=2),
    rate=st.decimals(min_value="0.01", max_value=10**6, places=2),
)
def test_runway_ends_days_from_now(balance, rate):
    forecast = runway(balance, rate, NOW)
    assert forecast is not None
    seconds = Decimal((forecast.until - NOW) // timedelta(seconds=1))
    assert forecast.days <= seconds / 86_400 < forecast.days + Decimal("0.1")
    if forecast.days < MAX_RUNWAY_DAYS:
        assert forecast.days <= balance / rate < forecast.days + Decimal("0.1")
        assert seconds <= balance / rate * 86_400 < seconds + 1


@given(
    gaps=minutes_apart,
    cents=st.lists(st.integers(-(10**8), 10**8), min_size=61, max_size=61),
    start_minutes=st.integers(0, 10 * 24 * 60),
    length_minutes=st.integers(1, 10 * 24 * 60),
)
def test_spend_is_each_falls_share_of_its_time_in_the_window(
    gaps, cents, start_minutes, length_minutes
):
    samples = readings(gaps, [Decimal(c) / 100 for c in cents[: len(gaps) + 1]])
    start = NOW - timedelta(minutes=start_minutes)
    end = start + timedelta(minutes=length_minutes)
    # The definition, in exact fractions, over the readings the rule keeps (the moves of
    # top_ups' kind, but every one): a fall's share is the part of its time in the window.
    kept = [samples[0]]
    for i, sample in enumerate(samples[1:-1], 1):
        move_in, move_out = (
            sample.balance - kept[-1].balance,
            samples[i + 1].balance - sample.balance,
        )
        back = abs(samples[i + 1].balance - kept[-1].balance) <= abs(move_in) / 10
        if not (move_in * move_out < 0 and back):
            kept.append(sample)
    kept.append(samples[-1])
    spend = Fraction(0)
    for before, after in itertools.pairwise(kept):
        overlap = min(after.taken_at, end) - max(before.taken_at, start)
        if after.balance < before.balance and overlap > timedelta(0):
            share = Fraction(overlap / timedelta(minutes=1)) / Fraction(
                (after.taken_at - before.taken_at) / timedelta(minutes=1)
            )
            spend += Fraction(before.balance - after.balance) * share
    expected = Decimal(spend.numerator) / Decimal(spend.denominator)
    assert spend_between(samples, start, end) == expected.quantize(Decimal("0.01"), ROUND_HALF_UP)


@given(
    gaps=st.lists(st.integers(30, 360), min_size=10, max_size=80),
    cents=st.lists(st.integers(0, 10**6), min_size=81, max_size=81),
    minimum=st.none() | st.integers(0, 10**4),
)
def test_an_anomaly_is_the_last_days_spend_and_is_looked_for_only_with_a_minimum(
    gaps, cents, minimum
):
    samples = readings(gaps, [Decimal(c) / 100 for c in cents[: len(gaps) + 1]])
    found = study(samples, NOW, minimum=None if minimum is None else Decimal(minimum))
    assert found.rate == study(samples, NOW).rate  # whatever the anomaly's settings
    last_day = spend_between(samples, NOW - timedelta(days=1), NOW)
    if minimum is None:
        assert found.anomaly is None
    else:
        assert found.anomaly is None or found.anomaly == last_day >= minimum
