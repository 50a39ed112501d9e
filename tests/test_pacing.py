"""Telegram's overall rate as the outbox's pacer hands out places, on an injected clock."""

import bisect
import random

import pytest

from bot.alerting.pacing import (
    GATHER,
    HEADROOM,
    JOIN,
    MESSAGES_PER_SECOND,
    PLACES_AT_ONCE,
    MemoryPacer,
)

RATE = MESSAGES_PER_SECOND * HEADROOM  # 27 a second
SPAN = PLACES_AT_ONCE / RATE


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def send_times(pacer: MemoryPacer, clock: Clock, count: int) -> list[float]:
    return [clock.now + await pacer.place() for _ in range(count)]


async def test_places_go_in_groups_the_moments_as_far_apart_as_a_group_of_places():
    clock = Clock()
    times = await send_times(MemoryPacer(clock=clock), clock, 3 * PLACES_AT_ONCE)
    first = 100.0 + GATHER
    moments = [first, first + SPAN, first + 2 * SPAN]
    assert times == pytest.approx([moment for moment in moments for _ in range(PLACES_AT_ONCE)])


async def test_a_send_after_a_quiet_while_waits_only_for_others_to_join():
    clock = Clock()
    pacer = MemoryPacer(clock=clock)
    assert await pacer.place() == pytest.approx(GATHER)
    clock.now += 2
    assert await send_times(pacer, clock, 2) == pytest.approx([102.0 + GATHER] * 2)


async def test_no_second_holds_more_sends_than_the_rate_however_they_come():
    rng = random.Random(16)
    clock = Clock()
    pacer = MemoryPacer(clock=clock)
    times = []
    for _ in range(600):
        clock.now += rng.choice([0, 0, 0.001, 0.004, 0.03, 0.2, 1.5])
        times.append(clock.now + await pacer.place())
    times.sort()

    def busiest(seconds: float) -> int:
        return max(bisect.bisect_left(times, t + seconds) - i for i, t in enumerate(times))

    # Telegram's 30 in a second at most, and a second and a ninth (taken a microsecond short,
    # for the rounding of spans added up) holds no more: a send may be that late before a
    # second holds 31.
    assert busiest(1) <= MESSAGES_PER_SECOND
    assert busiest(1 / HEADROOM - 1e-6) <= MESSAGES_PER_SECOND


async def test_a_send_just_after_its_group_went_joins_it_and_the_next_keeps_its_distance():
    # Chats sent at one moment free a few milliseconds apart: the first one freed goes alone,
    # and the others, asking a pass later, still go in its group, at once.
    clock = Clock()
    pacer = MemoryPacer(clock=clock)
    assert await pacer.place() == pytest.approx(GATHER)
    clock.now += GATHER + JOIN / 2
    for _ in range(PLACES_AT_ONCE - 1):
        assert await pacer.place() == 0
        clock.now += 0.001
    latest = clock.now - 0.001
    assert await send_times(pacer, clock, 1) == pytest.approx([latest + SPAN])


async def test_a_send_long_after_its_group_went_waits_for_the_next():
    clock = Clock()
    pacer = MemoryPacer(clock=clock)
    moment = clock.now + await pacer.place()
    clock.now = moment + JOIN * 2  # places are left in it, but it is gone
    assert await send_times(pacer, clock, 1) == pytest.approx([moment + SPAN])
