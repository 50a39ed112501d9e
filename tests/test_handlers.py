"""Handlers fed updates through the real Dispatcher, with a recording Bot and an in-memory SMSC."""

from decimal import Decimal

from aiogram.methods import DeleteMessage, EditMessageText
from cryptography.fernet import Fernet
from sqlalchemy import select

from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from bot.storage.models import Account, AccountState, Chat
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.mocked_bot import callback_update, message_update


async def test_help_in_both_languages(dp, bot):
    [reply] = await say(dp, bot, 1, "/start")
    assert "/balance" in reply.text and "SMS Center" in reply.text
    [reply] = await say(dp, bot, 2, "/help", language="ru")
    assert "/balance" in reply.text and "баланс" in reply.text.lower()


async def test_one_line_add_checks_saves_and_deletes_password(dp, bot, smsc, sessionmaker):
    replies = await say(dp, bot, 1, "/add shop right 100")
    assert bot.calls(DeleteMessage), "the message with the password must be deleted"
    assert "shop" in replies[-1].text and "150.00 RUB" in replies[-1].text
    assert all("right" not in r.text for r in replies)
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
    assert account.threshold == Decimal(100) and b"right" not in account.secret


async def test_wrong_password_saves_nothing_and_says_why(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/add shop wrong")
    assert "Not saved" in reply.text and "password" in reply.text
    async with sessionmaker() as session:
        assert (await session.scalars(select(Account))).all() == []


async def test_undeletable_password_message_gets_a_warning(dp, bot):
    bot.session.undeletable.add(1)
    replies = await say(dp, bot, 1, "/add shop right")
    assert "could not delete" in replies[0].text


async def test_bad_arguments_get_usage_and_change_nothing(dp, bot, sessionmaker):
    for text in ("/add onlylogin", "/add shop right lots"):
        replies = await say(dp, bot, 1, text)
        assert "Usage" in replies[-1].text, text
    async with sessionmaker() as session:
        assert (await session.scalars(select(Account))).all() == []
    await say(dp, bot, 1, "/add shop right 100")
    bad = [
        "/threshold",
        "/threshold shop",
        "/threshold shop lots",
        # Words run together by removing the spaces were 510, 12,345,678 and a critical 25.
        "/threshold shop 5 10",
        "/threshold shop 1 2 3 4 5 6 7 8",
        "/threshold shop critical 2 5",
        "/interval shop 0",
        "/interval shop 1.5",
        "/interval shop",
        "/remove shop now",
        "/lang de",
    ]
    for text in bad:
        replies = await say(dp, bot, 1, text)
        assert "Usage" in replies[-1].text, text
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        chat = await session.get(Chat, 1)
    assert (account.threshold, account.check_interval, chat.language) == (100, 900, "en")


async def test_balance_accounts_threshold_interval_remove(dp, bot, smsc, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, "/balance")
    assert "150.00 RUB" in reply.text
    [reply] = await say(dp, bot, 1, "/threshold shop 1 000,5")
    assert "1,000.50" in reply.text
    [reply] = await say(dp, bot, 1, "/threshold shop 25,000")  # English thousands, not 25
    assert "25,000.00" in reply.text
    [reply] = await say(dp, bot, 1, "/threshold shop 1,000.50")  # as the bot writes it
    assert "1,000.50" in reply.text
    [reply] = await say(dp, bot, 1, "/interval 5")  # the only account: name may be left out
    assert "every 5 min" in reply.text
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "1,000.50" in reply.text and "every 5 min" in reply.text
    [reply] = await say(dp, bot, 1, "/threshold nosuch 5")
    assert "No account named" in reply.text
    [confirm] = await say(dp, bot, 1, "/remove shop")
    yes = confirm.reply_markup.inline_keyboard[0][0].callback_data
    await dp.feed_update(bot, callback_update(confirm, yes, user_id=1))
    assert "Removed" in bot.calls(EditMessageText)[-1].text
    async with sessionmaker() as session:
        assert (await session.scalars(select(Account))).all() == []


async def test_a_chat_waiting_for_smsc_holds_no_database_connection(dp, bot, smsc, engine):
    """While SMSC answers one chat's /add or /balance (seconds, at worst), the pool's few
    connections stay free for every other chat's updates."""
    pool = engine.sync_engine.pool
    resting = pool.checkedout()  # the reader's (bot.storage.direct), held for the bot's life
    checked_out = []
    fetch = smsc.fetch_balance

    async def watched(creds):
        checked_out.append(pool.checkedout())
        return await fetch(creds)

    smsc.fetch_balance = watched
    dp.workflow_data["guard"] = BalanceGuard(smsc, cache_seconds=0)  # /balance asks SMSC
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, "/balance")
    assert "150.00 RUB" in reply.text
    assert checked_out == [resting, resting]


async def test_group_member_may_read_but_not_change(dp, bot):
    [reply] = await say(dp, bot, GROUP, "/balance", user_id=MEMBER)
    assert "No SMSC accounts" in reply.text
    [reply] = await say(dp, bot, GROUP, "/add shop right", user_id=MEMBER)
    assert "only administrators" in reply.text


async def test_group_admin_and_anonymous_admin_may_change(dp, bot):
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    assert "registered" in replies[-1].text
    [reply] = await say(dp, bot, GROUP, "/threshold shop 10", sender_chat=True, user_id=1087968824)
    assert "10.00" in reply.text


async def test_a_group_become_supergroup_keeps_its_accounts(dp, bot, sessionmaker):
    await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    service = message_update(GROUP, "", user_id=ADMIN)
    moved = service.message.model_copy(update={"text": None, "migrate_to_chat_id": GROUP - 1})
    await dp.feed_update(bot, service.model_copy(update={"message": moved}))
    async with sessionmaker() as session:
        assert (await session.scalar(select(Account))).chat_id == GROUP - 1
        assert await session.get(Chat, GROUP) is None


async def test_group_add_offers_private_hand_off(dp, bot):
    [reply] = await say(dp, bot, GROUP, "/add", user_id=ADMIN)
    buttons = [b for row in reply.reply_markup.inline_keyboard for b in row]
    assert buttons[0].url.startswith("https://t.me/smsc_test_bot?start=")


async def test_balance_of_an_account_whose_password_does_not_decrypt_says_so(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    async with sessionmaker() as session:  # as restored from a database of another key
        account = await session.scalar(select(Account))
        account.secret = SecretBox(Fernet.generate_key()).encrypt("right")
        await session.commit()
    [reply] = await say(dp, bot, 1, "/balance shop")
    assert "shop" in reply.text and "cannot decrypt the password or API key" in reply.text
    assert "/add" in reply.text and "right" not in reply.text


async def test_lang_switches_replies(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/lang ru")
    assert "русск" in reply.text
    [reply] = await say(dp, bot, 1, "/balance")
    assert "Добавьте" in reply.text or "/add" in reply.text
    async with sessionmaker() as session:
        assert (await session.get(Chat, 1)).language == "ru"


async def test_unknown_command_points_to_help(dp, bot):
    [reply] = await say(dp, bot, 1, "/frobnicate")
    assert "/help" in reply.text
    assert await say(dp, bot, GROUP, "/frobnicate", user_id=MEMBER) == []  # maybe another bot's


async def test_chat_alert_settings(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/remind 3")
    assert "after 3 h" in reply.text
    [reply] = await say(dp, bot, 1, "/margin 2,5%")
    assert "2.5% above its threshold, and at least 1 above it" in reply.text
    [reply] = await say(dp, bot, 1, "/margin 0")  # none at all
    assert reply.text.endswith("0% above its threshold.")
    [reply] = await say(dp, bot, 1, "/margin 2,5%")
    for bad in ("/remind soon", "/remind 0", "/margin 80", "/margin"):
        [reply] = await say(dp, bot, 1, bad)
        assert "Usage" in reply.text, bad
    [reply] = await say(dp, bot, 1, "/remind off")
    assert "No reminders" in reply.text
    async with sessionmaker() as session:
        chat = await session.get(Chat, 1)
    assert (chat.reminder_hours, chat.hysteresis_percent) == (0, Decimal("2.5"))


async def test_digest_and_time_zone_settings(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/tz Europe/Moscow")
    assert "Europe/Moscow" in reply.text
    [reply] = await say(dp, bot, 1, "/digest 9:30")
    assert "09:30 (Europe/Moscow)" in reply.text
    for bad in ("/tz", "/digest 25:00", "/digest soon"):
        [reply] = await say(dp, bot, 1, bad)
        assert "Usage" in reply.text, bad
    async with sessionmaker() as session:
        chat = await session.get(Chat, 1)
    assert (chat.timezone, chat.digest_time) == ("Europe/Moscow", "09:30")
    [reply] = await say(dp, bot, 1, "/digest off")
    assert "No daily digest" in reply.text


async def test_digest_off_in_a_forum_topic_forgets_the_topic_too(dp, bot, sessionmaker):
    await say(dp, bot, GROUP, "/digest 9:30", user_id=ADMIN, thread_id=7)
    async with sessionmaker() as session:
        chat = await session.get(Chat, GROUP)
        assert (chat.digest_time, chat.digest_thread_id) == ("09:30", 7)
    await say(dp, bot, GROUP, "/digest off", user_id=ADMIN, thread_id=7)
    async with sessionmaker() as session:
        chat = await session.get(Chat, GROUP)
        assert (chat.digest_time, chat.digest_thread_id) == (None, None)


async def test_runway_and_anomaly_settings(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, "/runway shop 14")
    assert "fewer than 14 days" in reply.text
    [reply] = await say(dp, bot, 1, "/anomaly 4 1 000")
    assert "4×" in reply.text and "1,000.00" in reply.text
    # "/anomaly 3 5 00" set a minimum of 500: the words after the factor are no amount.
    for bad in ("/runway shop soon", "/anomaly 1 100", "/anomaly lots", "/anomaly 3 5 00"):
        [reply] = await say(dp, bot, 1, bad)
        assert "Usage" in reply.text, bad
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        chat = await session.get(Chat, 1)
    assert account.runway_threshold == 14
    assert (chat.anomaly_factor, chat.anomaly_minimum) == (4, 1000)


async def test_percent_and_factor_read_back_as_typed(dp, bot, sessionmaker):
    # Every decimal an amount may have is shown: with three at most, a saved margin of
    # 0.000001% read back as "0%" and an anomaly factor of 1.0001 as "1", not what was set.
    [reply] = await say(dp, bot, 1, "/margin 0.000001")
    assert "restored 0.000001% above its threshold" in reply.text
    [reply] = await say(dp, bot, 1, "/anomaly 1.0001 500")
    assert "costs 1.0001× the week's average" in reply.text
    [reply] = await say(dp, bot, 2, "/margin 2,0625", language="ru")
    assert "на 2,0625% выше порога" in reply.text
    [reply] = await say(dp, bot, 2, "/anomaly 1,0001 500", language="ru")
    assert "в 1,0001× дороже" in reply.text
    for bad in ("/margin 0.0000001", "/anomaly 1.0000001 500"):  # past what an amount may have
        [reply] = await say(dp, bot, 1, bad)
        assert "Usage" in reply.text, bad
    async with sessionmaker() as session:
        chat = await session.get(Chat, 1)
    assert (chat.hysteresis_percent, chat.anomaly_factor) == (
        Decimal("0.000001"),
        Decimal("1.0001"),
    )


async def test_refused_credentials_are_not_retried_by_balance(dp, bot, smsc, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    smsc.accounts["shop"] = ("changed", Decimal(150))  # the password was changed in SMSC
    async with sessionmaker() as session:  # a scheduled check found out
        account = await session.scalar(select(Account))
        account.state, account.last_error = AccountState.CANT_CHECK, "auth"
        await session.commit()
    requests = len(smsc.requests)
    [reply] = await say(dp, bot, 1, "/balance")
    assert "login or password" in reply.text
    assert len(smsc.requests) == requests  # even a fresh guard (a restart) asks nothing


async def test_runway_answer_counts_the_days_in_both_languages(dp, bot):
    await say(dp, bot, 1, "/add shop right")
    await say(dp, bot, 2, "/add shop right", language="ru")
    [reply] = await say(dp, bot, 1, "/runway shop 1")
    assert reply.text == "I will warn when <b>shop</b> has money for less than 1 day."
    for days, words in ((1, "1 день"), (3, "3 дня"), (5, "5 дней"), (21, "21 день")):
        [reply] = await say(dp, bot, 2, f"/runway shop {days}", language="ru")
        assert reply.text.endswith(f"меньше чем на {words}."), reply.text
