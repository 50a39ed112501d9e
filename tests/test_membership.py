"""The bot blocked or removed, then let back in: what the chat hears of the accounts whose
alerts it could not get meanwhile."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from aiogram.methods import AnswerCallbackQuery, SendMessage
from sqlalchemy import select

from bot.alerting.claims import Claims
from bot.storage.models import Account, Chat, Notification
from tests.handler_fixtures import say
from tests.mocked_bot import callback_update, member_update
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def blocked_while_low(dp, bot, sessionmaker, threshold: str = "1000") -> None:
    """shop (150) goes under its threshold, and its alert meets a chat that blocked the bot:
    Telegram's 403, as the outbox handles it."""
    await say(dp, bot, 1, "/add shop right")
    await say(dp, bot, 1, f"/threshold shop {threshold}")
    await Claims(sessionmaker, lease_seconds=60, writes=None).chat_gone(1)


async def unsent(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        query = select(Notification).where(
            Notification.sent_at.is_(None), Notification.failure.is_(None)
        )
        return list((await session.scalars(query.order_by(Notification.id))).all())


def ids(notifications: list[Notification]) -> list[int]:
    return [notification.id for notification in notifications]


async def test_a_chat_back_hears_again_of_a_balance_still_low(dp, bot, sessionmaker):
    await blocked_while_low(dp, bot, sessionmaker)
    await dp.feed_update(bot, member_update(1, joined=True))
    [alert] = await unsent(sessionmaker)
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        assert (await session.get(Chat, 1)).active
    assert alert.kind == "low" and "Low balance on <b>shop</b>: 150" in alert.text
    assert "I'm on it" in alert.reply_markup
    assert account.alert_id == alert.id  # its incident, which escalates as usual
    # Taken like any alert.
    [ack] = [
        button["callback_data"]
        for row in json.loads(alert.reply_markup)["inline_keyboard"]
        for button in row
        if button["callback_data"].startswith("ack:")
    ]
    await dp.feed_update(
        bot, callback_update(SendMessage(chat_id=1, text=alert.text), ack, user_id=7)
    )
    assert bot.calls(AnswerCallbackQuery)[-1].text == "It's yours: no more reminders for it."


@pytest.mark.parametrize("case", ["nothing wrong", "muted", "never gone", "alert waiting"])
async def test_a_chat_back_gets_nothing_more_unless_it_missed_a_trouble(
    dp, bot, sessionmaker, case
):
    """Nothing is wrong, the account is muted (its mute's end will say its state), the chat
    never stopped hearing, or the alert still waits to go: nothing more is queued."""
    if case == "never gone":
        await say(dp, bot, 1, "/add shop right")
        await say(dp, bot, 1, "/threshold shop 1000")
    else:
        await blocked_while_low(dp, bot, sessionmaker, "100" if case == "nothing wrong" else "1000")
    async with sessionmaker() as session:
        if case == "muted":
            account = await session.scalar(select(Account))
            account.muted_until = datetime.now(UTC) + timedelta(hours=1)
        if case == "alert waiting":  # blocked and let back in before the outbox tried it
            alert = await session.scalar(select(Notification).where(Notification.kind == "low"))
            alert.failure = None
        await session.commit()
    before = ids(await unsent(sessionmaker))
    await dp.feed_update(bot, member_update(1, joined=True))
    assert ids(await unsent(sessionmaker)) == before
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).active
