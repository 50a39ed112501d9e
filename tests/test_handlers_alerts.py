"""The buttons under an alert pressed on a message Telegram withholds from the bot: a callback's
InaccessibleMessage (an old alert: its chat and id only, date 0). Each does what it does on a
Message; a button that cannot be that alert's is refused as on a Message."""

import itertools
from decimal import Decimal

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Update, User
from sqlalchemy import select, update

from bot.storage.models import Account, Notification
from bot.telegram.alerts import AckAction, AlertAction
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, low_in_group, say
from tests.mocked_bot import chat_of
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

OUT_OF_DATE = "This button is out of date."
STRAY = "This button is not for you, or it has expired."  # bot.telegram.handlers.fallback
ALERT = 777  # the message low_in_group's alert was sent as
_ids = itertools.count(500000)


def old(message_id: int = ALERT, chat_id: int = GROUP) -> InaccessibleMessage:
    return InaccessibleMessage(chat=chat_of(chat_id), message_id=message_id, date=0)


async def press(dp, bot, message: InaccessibleMessage | None, data: str) -> list:
    """The requests the bot made for the press; `message` None: one in inline mode."""
    query = CallbackQuery(
        id=str(next(_ids)),
        from_user=User(id=MEMBER, is_bot=False, first_name="Ann", language_code="en"),
        chat_instance="ci",
        message=message,
        inline_message_id=None if message else "inline",
        data=data,
    )
    before = len(bot.session.requests)
    await dp.feed_update(bot, Update(update_id=next(_ids), callback_query=query))
    return bot.session.requests[before:]


def answers(calls: list) -> list[str | None]:
    return [call.text for call in calls if isinstance(call, AnswerCallbackQuery)]


async def stored(sessionmaker, model, id_):
    async with sessionmaker() as session:
        return await session.get(model, id_)


async def test_im_on_it_on_an_old_alert_takes_it(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    calls = await press(dp, bot, old(), AckAction(account_id=shop.id).pack())
    assert answers(calls) == ["It's yours: no more reminders for it."]
    async with sessionmaker() as session:
        state = await session.get(Account, shop.id)
        edit = await session.scalar(select(Notification).where(Notification.kind == "acked"))
    assert (state.acked_by, state.acked_by_id) == ("Ann", MEMBER)
    assert edit.edit_of == shop.alert_id and "Acknowledged by Ann at" in edit.text


async def test_snooze_on_an_old_alert_notes_it_under_the_alert(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    calls = await press(dp, bot, old(), AlertAction(account_id=shop.id, snooze_hours=24).pack())
    alert = await stored(sessionmaker, Notification, shop.alert_id)
    [edit] = [call for call in calls if isinstance(call, EditMessageText)]
    assert (int(edit.chat_id), edit.message_id) == (GROUP, ALERT)
    assert edit.text.startswith(alert.text + "\n\n🔕 Reminders snoozed by Ann until ")
    assert edit.reply_markup == InlineKeyboardMarkup.model_validate_json(alert.reply_markup)
    assert (await stored(sessionmaker, Account, shop.id)).snoozed_until is not None


async def test_snooze_on_an_old_alert_keeps_what_it_shows_now(dp, bot, sessionmaker):
    # Acknowledged, and that edit sent: the alert shows who has it, and goes on showing it.
    shop = await low_in_group(dp, bot, sessionmaker)
    await press(dp, bot, old(), AckAction(account_id=shop.id).pack())
    async with sessionmaker() as session:
        await session.execute(
            update(Notification)
            .where(Notification.kind == "acked")
            .values(sent_at=Notification.created_at, message_id=ALERT)
        )
        await session.commit()
    for hours in (1, 24):  # the second snooze's note replaces the first's
        calls = await press(
            dp, bot, old(), AlertAction(account_id=shop.id, snooze_hours=hours).pack()
        )
    [edit] = [call for call in calls if isinstance(call, EditMessageText)]
    alert, note = edit.text.rsplit("\n\n", 1)
    assert "Acknowledged by Ann at" in alert and "snoozed" not in alert
    assert note.startswith("🔕 Reminders snoozed by Ann until ")
    assert edit.reply_markup is not None  # "I'm on it" and the rest stay


async def test_check_now_on_an_old_alert_answers_in_the_accounts_topic(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    async with sessionmaker() as session:
        await session.execute(update(Account).values(thread_id=55))
        await session.commit()
    calls = await press(dp, bot, old(), AlertAction(account_id=shop.id).pack())
    assert answers(calls) == ["Checking…"]
    [sent] = [call for call in calls if isinstance(call, SendMessage)]
    assert (int(sent.chat_id), sent.message_thread_id) == (GROUP, 55)
    assert sent.text.startswith("<b>shop</b>") and "150" in sent.text


BUTTONS = {
    "im_on_it": lambda account_id: AckAction(account_id=account_id).pack(),
    "snooze": lambda account_id: AlertAction(account_id=account_id, snooze_hours=1).pack(),
    "check_now": lambda account_id: AlertAction(account_id=account_id).pack(),
}
# Where a press comes from, and whose button it names: (message, account) of (shop, other).
REFUSED = {
    "another_accounts_alert": lambda shop, other: (old(), other),
    "a_message_not_an_alert": lambda shop, other: (old(ALERT + 1), shop),
    "another_chat": lambda shop, other: (old(chat_id=MEMBER), shop),
}


async def refused(dp, bot, smsc, sessionmaker, message, data, account):
    """The press answered as a stray one, nothing asked of SMSC, shown or changed."""
    requests = len(smsc.requests)
    calls = await press(dp, bot, message, data)
    assert answers(calls) == [OUT_OF_DATE if message else STRAY]
    assert not [call for call in calls if isinstance(call, EditMessageText | SendMessage)]
    assert len(smsc.requests) == requests
    state = await stored(sessionmaker, Account, account.id)
    assert (state.acked_by, state.snoozed_until) == (None, None)


@pytest.mark.parametrize("button", BUTTONS)
@pytest.mark.parametrize("case", REFUSED)
async def test_an_old_message_the_alert_is_not_refuses_the_button(
    dp, bot, smsc, sessionmaker, case, button
):
    shop = await low_in_group(dp, bot, sessionmaker)
    smsc.accounts["other"] = ("pw", Decimal("100"))
    await say(dp, bot, GROUP, "/add other pw", user_id=ADMIN)  # in the chat, no alert
    async with sessionmaker() as session:
        other = await session.scalar(select(Account).where(Account.name == "other"))
    message, account = REFUSED[case](shop, other)
    await refused(dp, bot, smsc, sessionmaker, message, BUTTONS[button](account.id), account)


@pytest.mark.parametrize("button", BUTTONS)
async def test_a_press_with_no_message_is_refused(dp, bot, smsc, sessionmaker, button):
    # Inline mode: no chat to look for the account in (it was an unhandled error).
    shop = await low_in_group(dp, bot, sessionmaker)
    await refused(dp, bot, smsc, sessionmaker, None, BUTTONS[button](shop.id), shop)


async def test_a_snooze_never_offered_is_refused_on_an_old_alert(dp, bot, sessionmaker):
    shop = await low_in_group(dp, bot, sessionmaker)
    calls = await press(dp, bot, old(), AlertAction(account_id=shop.id, snooze_hours=2).pack())
    assert answers(calls) == [OUT_OF_DATE]
    assert (await stored(sessionmaker, Account, shop.id)).snoozed_until is None
