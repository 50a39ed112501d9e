"""Heavy commands draw on a per-chat budget: a polite "again in N s", other chats unaffected."""

from aiogram.methods import SendPhoto

from bot.telegram.handlers.history import history_budget
from bot.telegram.ratelimit import WorkBudget
from tests.handler_fixtures import say


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_budget_refills_and_refuses_with_the_wait():
    clock = Clock()
    budget = WorkBudget(burst=10, refill_seconds=2, clock=clock)
    assert budget.spend(1, 10) == 0
    assert budget.spend(1, 1) == 2  # one unit back in 2 s
    assert budget.spend(2, 10) == 0  # another chat has its own
    clock.now += 2
    assert budget.spend(1, 1) == 0
    assert budget.spend(1, 5) == 10
    clock.now += 20
    assert budget.spend(1, 50) == 0  # more than the burst costs the whole burst
    assert budget.spend(1, 1) == 2


def test_a_fresh_chat_gets_the_whole_burst_whatever_the_clock_reads():
    clock = Clock()
    clock.now = 868.2761801673822  # (now + 156) - now > 156 in floating point
    budget = WorkBudget(burst=52, refill_seconds=3, clock=clock)  # /history's
    assert budget.spend(1, 52) == 0  # the largest chart: 4 panels of 13 months


def test_budget_memory_is_bounded():
    clock = Clock()
    budget = WorkBudget(burst=10, refill_seconds=1, max_chats=100, clock=clock)
    for chat in range(1000):
        budget.spend(chat, 1)
    assert len(budget._full_at) <= 100
    assert budget.spend(999, 10) == 1  # the most recent are remembered
    clock.now += 10
    for chat in range(1000, 1200):
        budget.spend(chat, 1)
    assert len(budget._full_at) <= 100


async def test_history_365_over_many_accounts_is_not_askable_again_at_once(dp, bot, smsc):
    clock = Clock()
    budget = history_budget()
    budget._clock = clock  # the real limits, on a clock the test moves
    dp.workflow_data["history_budget"] = budget
    for name in ("shop", "shop2", "shop3", "shop4", "shop5"):
        smsc.accounts[name] = ("pw", 100)
        await say(dp, bot, 1, f"/add {name} pw")
    assert await say(dp, bot, 1, "/history 365") == []
    [refusal] = await say(dp, bot, 1, "/history 365")
    assert "try again in 156 s" in refusal.text
    [refusal] = await say(dp, bot, 1, "/history shop 7", language="en")
    assert "try again in 3 s" in refusal.text
    assert len(bot.calls(SendPhoto)) == 1
    await say(dp, bot, 2, "/add shop pw")
    assert await say(dp, bot, 2, "/history 365") == []  # another chat is not held back
    clock.now += 3
    assert await say(dp, bot, 1, "/history shop 7") == []
    assert len(bot.calls(SendPhoto)) == 3
    [refusal] = await say(dp, bot, 1, "/history")  # four panels of a month: 4 units
    assert "try again in 12 s" in refusal.text
