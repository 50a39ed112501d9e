"""Alert rules when Telegram did not deliver (`Checker.telegram_down`): an alert the chat never
heard of is dropped once stale, or told together with what ended it, in the chat's zone."""

from bot.smsc.errors import SmscAuthError
from bot.storage.models import Chat
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def test_outage_of_smsc_unheard_of_is_not_told_after_it_ended(check, clock):
    check.telegram_down = True
    await check.fail(SmscAuthError(2, "authorise error"))
    assert await check.kinds() == ["cant_check"]
    clock.advance(minutes=5)
    await check.balance("1500")
    assert await check.delivered() == []  # neither the stale "can't check" nor "works again"
    [dropped] = await check.alerts()
    assert dropped.failure == "stale"


async def test_low_balance_unheard_of_and_its_recovery_are_one_message(check, clock):
    check.telegram_down = True
    await check.balance("900")
    clock.advance(minutes=30)
    await check.balance("2000")
    [low, merged] = await check.alerts()
    assert low.kind == "low" and low.failure == "stale"
    assert merged.kind == "recovered" and merged.failure is None and not merged.silent
    assert merged.text.startswith("⚠️ <b>shop</b> was low from 1 Mar 09:00 to 1 Mar 09:30.\n✅")
    assert "back to" in merged.text and "Topped up by" in merged.text


async def test_merged_message_shows_times_in_the_chats_zone(check, clock, sessionmaker):
    async with sessionmaker() as session:
        chat = await session.get(Chat, -100)
        chat.timezone, chat.language = "Europe/Moscow", "ru"
        await session.commit()
    check.telegram_down = True
    await check.balance("900")
    clock.advance(minutes=30)
    await check.balance("2000")
    merged = (await check.alerts())[-1]
    assert "с 1 мар. 12:00 до 1 мар. 12:30" in merged.text


async def test_delivered_low_alert_is_followed_by_a_plain_recovery(check, clock):
    await check.balance("900")
    clock.advance(minutes=30)
    await check.balance("2000")
    assert await check.delivered() == ["low", "recovered"]
    assert (await check.alerts())[-1].silent
