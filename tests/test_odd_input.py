"""Odd arguments and forged buttons get a specific answer and change nothing, never a traceback."""

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage, SendPhoto
from sqlalchemy import select

from bot.storage.models import Account, Chat
from bot.telegram.alerts import AlertAction
from bot.telegram.handlers.manage import RemoveChoice
from tests.handler_fixtures import say
from tests.mocked_bot import callback_update


@pytest.mark.parametrize(
    "text",
    [
        "/interval shop ²",
        "/interval ²",
        "/interval shop ٣",
        "/remind ²",
        "/remind 99999999999999999999",
        "/runway shop ²",
        "/history shop ²",
        "/history ²",
        "/history 1e9",
        "/digest 1٣:00",
    ],
)
async def test_unicode_digits_get_usage(dp, bot, sessionmaker, caplog, text):
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, text)
    assert "Usage" in reply.text
    assert "update failed" not in caplog.text
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        chat = await session.get(Chat, 1)
    assert (account.check_interval, account.runway_threshold, chat.reminder_hours) == (900, None, 6)


@pytest.mark.parametrize(
    "text",
    [
        "/threshold shop\u200b 500",  # a zero-width space
        "/threshold \u200fshop 500\u200f",  # right-to-left marks
        "/threshold \u200eshop\u200e \u2060500",  # left-to-right marks, a word joiner
        "/threshold shop 500\ufeff",  # a byte order mark
    ],
)
async def test_invisible_characters_in_arguments_are_ignored(dp, bot, sessionmaker, text):
    """Typed or pasted unseen, they made "shop" another name: "No account named shop"."""
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, text)
    assert reply.text == "I will warn when <b>shop</b> falls below 500.00."
    async with sessionmaker() as session:
        assert (await session.scalar(select(Account))).threshold == 500


@pytest.mark.parametrize(
    ("zone", "answer"),
    [
        ("America", "America is a region: name a city in it, e.g. /tz America/"),
        ("europe/", "europe/ is a region"),
        ("Mars/Olympus", "I don't know the time zone Mars/Olympus"),
        ("../../../etc/passwd", "I don't know the time zone"),
        ("/usr/share/zoneinfo/UTC", "I don't know the time zone"),
        ("<b>", "I don't know the time zone &lt;b&gt;"),
        # Names the zone database has that are no place: a placeholder, and the server's own
        # zone, whatever that is.
        ("Factory", "I don't know the time zone Factory. Use a name such as Europe/Moscow."),
        ("factory", "I don't know the time zone factory."),
        ("localtime", "I don't know the time zone localtime."),
        ("posixrules", "I don't know the time zone posixrules."),
        ("Etc/Unknown", "I don't know the time zone Etc/Unknown."),
    ],
)
async def test_odd_time_zones_are_answered_specifically(
    dp, bot, sessionmaker, caplog, zone, answer
):
    [reply] = await say(dp, bot, 1, f"/tz {zone}")
    assert answer in reply.text
    assert "update failed" not in caplog.text
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).timezone == "UTC"


@pytest.mark.parametrize(
    ("typed", "zone"),
    [("UTC", "UTC"), ("Etc/GMT+3", "Etc/GMT+3"), ("etc/gmt-3", "Etc/GMT-3"), ("GMT", "GMT")],
)
async def test_zones_without_a_city_are_still_zones(dp, bot, sessionmaker, typed, zone):
    await say(dp, bot, 1, "/tz Europe/Moscow")
    [reply] = await say(dp, bot, 1, f"/tz {typed}")
    assert reply.text == f"Time zone of this chat: {zone}."
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).timezone == zone


@pytest.mark.parametrize(
    "text",
    ["/balance", "/history", "/threshold", "/remove", "/mute", "/rename", "/interval", "/tz"],
)
async def test_a_message_long_word_is_quoted_back_short(dp, bot, sessionmaker, text):
    await say(dp, bot, 1, "/add shop right")
    word = "x" * (4096 - len(text) - 1)  # the longest message Telegram delivers
    [reply] = await say(dp, bot, 1, f"{text} {word} 5")
    assert "x" * 39 + "…" in reply.text and len(reply.text) < 200
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).timezone == "UTC"
        assert [a.name for a in (await session.scalars(select(Account))).all()] == ["shop"]


async def test_time_zone_in_any_case(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/tz europe/moscow")
    assert "Europe/Moscow" in reply.text
    [reply] = await say(dp, bot, 1, "/tz ru")  # no such zone, only a language
    assert "don't know" in reply.text
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).timezone == "Europe/Moscow"


async def press(dp, bot, chat_id, data):
    message = SendMessage(chat_id=chat_id, text="⚠️ Low balance on shop")
    before = len(bot.session.requests)
    await dp.feed_update(bot, callback_update(message, data, user_id=abs(chat_id)))
    return bot.session.requests[before:]


async def account_ids(sessionmaker):
    async with sessionmaker() as session:
        return {a.chat_id: a for a in (await session.scalars(select(Account))).all()}


@pytest.mark.parametrize(
    "data",
    [
        lambda own, other: AlertAction(account_id=own, snooze_hours=10**12).pack(),
        lambda own, other: AlertAction(account_id=own, snooze_hours=2).pack(),
        lambda own, other: AlertAction(account_id=own, snooze_hours=-1).pack(),
        lambda own, other: AlertAction(account_id=other, snooze_hours=1).pack(),
        lambda own, other: AlertAction(account_id=10**30, snooze_hours=1).pack(),
        lambda own, other: AlertAction(account_id=other).pack(),
        lambda own, other: RemoveChoice(account_id=other, confirmed=True).pack(),
        lambda own, other: RemoveChoice(account_id=10**30, confirmed=True).pack(),
    ],
)
async def test_buttons_not_offered_change_nothing(dp, bot, smsc, sessionmaker, caplog, data):
    await say(dp, bot, 1, "/add shop right")
    await say(dp, bot, 2, "/add shop right")
    accounts = await account_ids(sessionmaker)
    requests = len(smsc.requests)
    calls = await press(dp, bot, 1, data(accounts[1].id, accounts[2].id))
    [answer] = [c for c in calls if isinstance(c, AnswerCallbackQuery)]
    assert answer.text == "This button is out of date."
    assert not [c for c in calls if isinstance(c, SendMessage | EditMessageText)]
    assert len(smsc.requests) == requests
    after = await account_ids(sessionmaker)
    assert set(after) == {1, 2}
    assert after[1].snoozed_until is None and after[2].snoozed_until is None
    assert "update failed" not in caplog.text


async def test_offered_snooze_still_works(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    own = (await account_ids(sessionmaker))[1].id
    calls = await press(dp, bot, 1, AlertAction(account_id=own, snooze_hours=24).pack())
    [edit] = [c for c in calls if isinstance(c, EditMessageText)]
    assert "snoozed by Ann" in edit.text
    assert (await account_ids(sessionmaker))[1].snoozed_until is not None


async def test_a_second_snooze_replaces_the_first_note_only(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    own = (await account_ids(sessionmaker))[1].id
    # An escalation naming an administrator whose name holds the snooze's mark.
    alert = "🚨 Nobody has taken the alert on shop. 🔕 Night Shift, please look."
    data = AlertAction(account_id=own, snooze_hours=1).pack()
    for _ in range(2):
        anchor = SendMessage(chat_id=1, text=alert)
        await dp.feed_update(bot, callback_update(anchor, data, user_id=1))
        [edit] = [c for c in bot.session.requests if isinstance(c, EditMessageText)][-1:]
        alert = edit.text
    head, note = alert.split("\n\n")
    assert head == "🚨 Nobody has taken the alert on shop. 🔕 Night Shift, please look."
    assert note.startswith("🔕 Reminders snoozed by Ann")


async def test_history_of_an_account_whose_name_begins_with_a_digit(dp, bot, smsc):
    smsc.accounts["2gis"] = ("pw", 100)
    await say(dp, bot, 1, "/add 2gis pw")
    assert await say(dp, bot, 1, "/history 2gis") == []  # its chart, not the usage
    [chart] = bot.calls(SendPhoto)
    assert "2gis" in chart.caption
    [reply] = await say(dp, bot, 1, "/history 2gas")  # no such account: still the usage
    assert "Usage" in reply.text
