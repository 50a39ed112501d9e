"""The sliding windows the SMSC guard counts requests and refusals in."""

from bot.smsc.windows import SlidingWindow


def test_window_waits_until_the_oldest_counted_time_is_a_span_old():
    window = SlidingWindow(60)
    for now in (0.0, 10.0, 20.0):
        window.add(now)
    assert window.wait(30.0, limit=4) == 0  # three in the last minute: room for a fourth
    assert window.wait(30.0, limit=3) == 30  # the first drops out at 60
    assert window.wait(30.0, limit=2) == 40  # the second at 70
    assert window.wait(60.0, limit=3) == 0


def test_window_keeps_only_the_times_within_its_span():
    """A login checked all day holds the last minute's requests, not the day's (memory)."""
    window = SlidingWindow(60)
    for second in range(0, 86_400, 10):
        window.add(float(second))
    assert len(window._times) == 6
    assert window.wait(86_400.0, limit=6) == 0
