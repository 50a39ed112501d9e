"""Acknowledge (issue 15): "I'm on it" takes the incident, stops its reminders, and shows on
the alert (an edit through the outbox); the alert is edited again when the incident ends."""

import json
import random

from aiogram.methods import AnswerCallbackQuery, SendMessage
from sqlalchemy import select, update

from bot.alerting.outbox import Outbox
from bot.smsc.errors import SmscAuthError
from bot.storage.models import Account, Notification
from bot.telegram.alerts import AckAction
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, low_in_group, say
from tests.mocked_bot import callback_update
from tests.monitoring_fixtures import Checker
from tests.outbox_fixtures import FakeSender, MonotonicClock, settle
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def notes(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        return (await session.scalars(select(Notification).order_by(Notification.id))).all()


async def acknowledge(monitor, sessionmaker, account_id, user_id=5, user="Bob") -> bool:
    async with sessionmaker() as session:
        account = await session.get(Account, account_id)
        return await monitor.acknowledge(session, account, user_id, user, message_id=0)


async def test_every_alert_with_buttons_has_im_on_it(sessionmaker, monitor, clock, account):
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("900")
    [alert] = await check.alerts()
    rows = json.loads(alert.reply_markup)["inline_keyboard"]
    assert [b["text"] for b in rows[0]] == ["Snooze 1 h", "Snooze 24 h", "Check now"]
    assert [b["callback_data"] for b in rows[1]] == [AckAction(account_id=account).pack()]
    assert (await check.state()).alert_id == alert.id


async def test_acknowledge_stops_reminders_and_is_shown_then_resolved(
    sessionmaker, monitor, clock, account
):
    check = Checker(sessionmaker, monitor, clock, account)
    check.telegram_down = True  # the outbox below delivers, with message ids
    sender = FakeSender()
    outbox = Outbox(sender, sessionmaker, clock=MonotonicClock(clock), now=clock)
    outbox._rng = random.Random(1)
    await check.balance("900")
    await settle(outbox, clock, 5)
    [alert] = await notes(sessionmaker)
    assert await acknowledge(monitor, sessionmaker, account)
    state = await check.state()
    assert (state.acked_by, state.acked_by_id, state.acked_at) == ("Bob", 5, clock.now)
    [_alert, acked] = await notes(sessionmaker)
    assert acked.edit_of == alert.id and acked.kind == "acked"
    assert acked.text.startswith(alert.text)
    assert acked.text.endswith("👤 Acknowledged by Bob at 1 Mar 09:00.")
    assert acked.reply_markup == alert.reply_markup  # the buttons stay
    await settle(outbox, clock, 5)
    assert sender.calls[-1] == ("edit", acked.id, alert.message_id)  # delivered as an edit
    # No reminders while someone is on it.
    for _ in range(3):
        clock.advance(hours=7)
        await check.balance("900")
    assert await check.kinds() == ["low"]
    # The incident ends: the alert says so, without buttons, and nobody has it any more.
    await check.balance("5000")
    assert await check.kinds() == ["low", "recovered"]
    resolved = (await notes(sessionmaker))[-1]
    assert resolved.kind == "resolved" and resolved.edit_of == alert.id
    assert "Acknowledged by Bob" in resolved.text and "✅ Resolved at 2 Mar 06:00." in resolved.text
    assert resolved.reply_markup is None
    state = await check.state()
    assert (state.acked_by, state.acked_at, state.alert_id) == (None, None, None)
    await settle(outbox, clock, 5)
    assert sender.calls[-2:] == [
        ("send", resolved.id - 1, None),
        ("edit", resolved.id, alert.message_id),
    ]


async def test_a_second_acknowledge_does_not_take_it_over(sessionmaker, monitor, clock, account):
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("900")
    assert await acknowledge(monitor, sessionmaker, account, 5, "Bob")
    assert not await acknowledge(monitor, sessionmaker, account, 6, "Eve")
    state = await check.state()
    assert (state.acked_by, state.acked_by_id) == ("Bob", 5)
    assert [n.kind for n in await notes(sessionmaker)] == ["low", "acked"]


async def test_cant_check_incident_is_resolved_when_checks_work_again(
    sessionmaker, monitor, clock, account
):
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("5000")
    await check.fail(SmscAuthError(2, "authorise error"))
    [alert] = await check.alerts()
    assert alert.kind == "cant_check" and (await check.state()).alert_id == alert.id
    assert "I'm on it" in alert.reply_markup
    await check.balance("5000")
    resolved = (await notes(sessionmaker))[-1]
    assert resolved.kind == "resolved" and resolved.edit_of == alert.id
    assert (await check.state()).alert_id is None


async def test_a_reminder_after_mute_off_can_be_taken(sessionmaker, monitor, clock, account):
    check = Checker(sessionmaker, monitor, clock, account)
    async with sessionmaker() as session:
        monitor.mute(await session.get(Account, account), 2)
        await session.commit()
    await check.balance("900")  # low, unheard
    async with sessionmaker() as session:
        monitor.mute(await session.get(Account, account), None)  # /mute off: nothing said
        await session.commit()
    clock.advance(hours=6)
    await check.balance("900")
    [reminder] = await check.alerts()
    assert reminder.kind == "reminder" and (await check.state()).alert_id == reminder.id
    assert await acknowledge(monitor, sessionmaker, account)


async def test_nothing_to_acknowledge_without_an_open_incident(
    sessionmaker, monitor, clock, account
):
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("5000")
    assert not await acknowledge(monitor, sessionmaker, account)
    assert (await check.state()).acked_by is None


# Through the handlers: anyone in the chat may press; a second press is told who has it.


async def press(dp, bot, account_id, user_id, message_id=None):
    message = SendMessage(chat_id=GROUP, text="⚠️ Low balance on shop")
    update_ = callback_update(message, AckAction(account_id=account_id).pack(), user_id=user_id)
    if message_id is not None:  # the alert's own message, not a new one
        query = update_.callback_query
        pressed = query.message.model_copy(update={"message_id": message_id})
        query = query.model_copy(update={"message": pressed})
        update_ = update_.model_copy(update={"callback_query": query})
    before = len(bot.session.requests)
    await dp.feed_update(bot, update_)
    [answer] = [r for r in bot.session.requests[before:] if isinstance(r, AnswerCallbackQuery)]
    return answer.text


async def test_pressing_im_on_it_takes_the_alert(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    assert shop.alert_id is not None
    answer = await press(dp, bot, shop.id, MEMBER, message_id=777)
    assert answer == "It's yours: no more reminders for it."
    async with sessionmaker() as session:
        state = await session.get(Account, shop.id)
        edit = await session.scalar(select(Notification).where(Notification.kind == "acked"))
    assert (state.acked_by, state.acked_by_id) == ("Ann", MEMBER)
    assert edit.edit_of == shop.alert_id and "Acknowledged by Ann at" in edit.text
    assert await press(dp, bot, shop.id, MEMBER) == "You are already on it."
    assert await press(dp, bot, shop.id, ADMIN) == "Ann is already on it."
    async with sessionmaker() as session:
        acks = await session.scalars(select(Notification).where(Notification.kind == "acked"))
        assert len(acks.all()) == 1


async def test_a_button_of_another_chats_account_is_out_of_date(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    async with sessionmaker() as session:
        other = await session.scalar(select(Account.id))
    assert await press(dp, bot, other, MEMBER) == "This button is out of date."


async def test_a_removed_accounts_alert_never_takes_a_later_accounts_incident(
    dp, bot, smsc, sessionmaker
):
    # SQLite gave the next account added the removed one's ID, and its old alert's button took
    # the new account's incident.
    shop = await low_in_group(dp, bot, sessionmaker)
    [confirm] = await say(dp, bot, GROUP, "/remove shop", user_id=ADMIN)
    yes = confirm.reply_markup.inline_keyboard[0][0].callback_data
    await dp.feed_update(bot, callback_update(confirm, yes, user_id=ADMIN))
    smsc.accounts["other"] = ("pw", smsc.accounts["shop"][1])
    await say(dp, bot, GROUP, "/add other pw 200", user_id=ADMIN)  # low: an incident opens
    assert await press(dp, bot, shop.id, MEMBER) == "This button is out of date."
    async with sessionmaker() as session:
        other = await session.scalar(select(Account))
    assert other.alert_id is not None and other.acked_by is None


async def test_im_on_it_in_russian(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    await say(dp, bot, GROUP, "/lang ru", user_id=ADMIN)
    await press(dp, bot, shop.id, MEMBER)
    async with sessionmaker() as session:
        edit = await session.scalar(select(Notification).where(Notification.kind == "acked"))
    assert "Взял(а) в работу: Ann" in edit.text


async def test_pressed_on_a_reminder_both_it_and_the_alert_show_it(
    sessionmaker, monitor, clock, account
):
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("900")
    clock.advance(hours=7)
    await check.balance("900")
    async with sessionmaker() as session:
        await session.execute(
            update(Notification).values(message_id=Notification.id + 100, sent_at=clock.now)
        )
        await session.commit()
    alert, reminder = await notes(sessionmaker)
    assert reminder.kind == "reminder"
    async with sessionmaker() as session:
        shop = await session.get(Account, account)
        assert await monitor.acknowledge(session, shop, 5, "Bob", message_id=reminder.message_id)
    edits = [n for n in await notes(sessionmaker) if n.kind == "acked"]
    assert sorted(n.edit_of for n in edits) == [alert.id, reminder.id]
