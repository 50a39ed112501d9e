"""Alert rules on spending over many checks, with an injected clock: top-ups with the runway
they buy, small refunds, the runway threshold, and unusual spending."""

import pytest

from bot.storage.models import Account, AccountState, Chat
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def spend_steadily(check, clock, start: int, per_hour: int, hours: int) -> int:
    balance = start
    for _ in range(hours):
        await check.balance(str(balance))
        clock.advance(hours=1)
        balance -= per_hour
    return balance


async def test_top_up_reported_once_with_runway(check, clock):
    balance = await spend_steadily(check, clock, 3000, 10, 48)  # 240 a day
    await check.balance(str(balance + 5000))
    await check.balance(str(balance + 5000))
    [topup] = [a for a in await check.alerts() if a.kind == "topup"]
    assert "+4,990.00 RUB" in topup.text and topup.silent  # from the last balance seen
    assert "enough for ~" in topup.text and "days" in topup.text


async def test_small_refunds_are_not_top_ups(check):
    await check.balance("1500")
    await check.balance("1503")  # an undelivered SMS refunded
    assert await check.kinds() == []


async def test_runway_threshold_alerts_once_and_recovers(check, clock, sessionmaker):
    async with sessionmaker() as session:
        account = await session.get(Account, check.id)
        account.threshold, account.runway_threshold = None, 10
        await session.commit()
    # 240 a day from 5000: the runway shrinks under 10 days once below 2400.
    balance = await spend_steadily(check, clock, 5000, 10, 24 * 12)
    kinds = await check.kinds()
    assert kinds.count("low") == 1
    low = next(a for a in await check.alerts() if a.kind == "low")
    assert "run out soon" in low.text and "under 10 days" in low.text
    await check.balance(str(balance + 10000))
    assert (await check.kinds())[-1] == "recovered"


async def test_spend_anomaly_once_per_episode(check, clock):
    balance = await spend_steadily(check, clock, 100000, 10, 24 * 8)  # 240 a day for a week
    balance = await spend_steadily(check, clock, balance, 200, 12)  # then a runaway sender
    balance = await spend_steadily(check, clock, balance, 200, 6)
    anomalies = [a for a in await check.alerts() if a.kind == "anomaly"]
    assert len(anomalies) == 1
    assert "Unusual spending" in anomalies[0].text and "Check now" in anomalies[0].reply_markup


async def test_no_anomaly_alerts_when_the_chat_turned_them_off(check, clock, sessionmaker):
    async with sessionmaker() as session:
        (await session.get(Chat, -100)).anomaly_minimum = None
        await session.commit()
    balance = await spend_steadily(check, clock, 100000, 10, 24 * 8)
    await spend_steadily(check, clock, balance, 200, 12)
    assert "anomaly" not in await check.kinds()


@pytest.mark.parametrize("gap_days", [7, 4], ids=["bot down a week", "checked every 4 days"])
async def test_runway_incident_lasts_while_the_rate_is_unknown(
    check, clock, sessionmaker, gap_days
):
    """Under three readings in the week (after the bot was down, or checked every few days)
    the rate is unknown: the runway incident stays open on the last rate known, no false
    recovery and no second alert, until a top-up lifts the balance clear of it."""
    async with sessionmaker() as session:
        account = await session.get(Account, check.id)
        account.threshold, account.runway_threshold = None, 30
        await session.commit()
    # 240 a day from 6000: a runway of 25 days, under 30, once there is a day of history.
    balance = await spend_steadily(check, clock, 6000, 10, 48)
    assert (await check.state()).state == AccountState.LOW
    for _ in range(3):
        clock.advance(days=gap_days)
        balance -= 240 * gap_days
        await check.balance(str(balance))
    state = await check.state()
    assert state.state == AccountState.LOW and state.spend_rate == 240
    assert "recovered" not in await check.kinds() and (await check.kinds()).count("low") == 1
    clock.advance(days=gap_days)
    await check.balance(str(balance + 10000))  # 32 days at the last rate: clear by the margin
    assert (await check.kinds())[-1] == "recovered"
