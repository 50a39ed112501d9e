"""/add against a hostile member or stranger, through the real Dispatcher (tests/mocked_bot.py):
the hand-off link, replacing credentials, idle dialogs and the lock-out. Secrets in groups:
tests/test_handlers_add_groups.py."""

import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiogram.methods import DeleteMessage, EditMessageText, GetChatMember
from sqlalchemy import update

from bot.smsc.guard import BalanceGuard
from bot.storage.models import Account, Handoff
from bot.telegram.handlers.add_dialog import KindChoice, ReplaceChoice
from tests.add_fixtures import accounts_of, handed_off, press, remove_bot, walk_to_secret
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.mocked_bot import member_update

pytestmark = pytest.mark.usefixtures("fast_retries")


# ----- the hand-off link --------------------------------------------------------------


async def test_link_is_a_random_single_use_token(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    assert re.fullmatch(r"add_[A-Za-z0-9_-]{32}", payload)
    assert str(abs(GROUP)) not in payload
    assert payload != await handed_off(dp, bot)

    replies = await say(dp, bot, ADMIN, f"/start {payload}")
    assert "Ops" in replies[0].text and "sign in" in replies[-1].text
    [again] = await say(dp, bot, ADMIN, f"/start {payload}")
    assert "already used" in again.text


async def test_link_opened_by_another_user_changes_nothing(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    bot.session.admins.add((GROUP, MEMBER))  # even another admin of the group
    [refusal] = await say(dp, bot, MEMBER, f"/start {payload}")
    assert "belongs to the person who sent /add" in refusal.text
    assert await dp.fsm.get_context(bot, MEMBER, MEMBER).get_state() is None
    replies = await say(dp, bot, ADMIN, f"/start {payload}")  # still the owner's
    assert "sign in" in replies[-1].text


async def test_late_link_is_refused(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    async with sessionmaker() as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(Handoff).values(expires_at=past))
        await session.commit()
    [refusal] = await say(dp, bot, ADMIN, f"/start {payload}")
    assert "expired" in refusal.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None


@pytest.mark.parametrize(
    "payload", ["add_-100500_0x", "add_-100500_0", "add_", "add_" + "A" * 32, "hello-there"]
)
async def test_malformed_or_made_up_links_get_a_specific_answer(dp, bot, payload, caplog):
    [reply] = await say(dp, bot, ADMIN, f"/start {payload}")
    assert "link" in reply.text and "went wrong" not in reply.text
    assert "update failed" not in caplog.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None


async def test_demoted_admin_cannot_finish_a_hand_off(dp, bot, smsc, sessionmaker):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    bot.session.admins.discard((GROUP, ADMIN))
    replies = await say(dp, bot, ADMIN, "right")
    assert "not one now" in replies[-1].text
    assert bot.calls(DeleteMessage), "the password is deleted all the same"
    assert await accounts_of(sessionmaker, GROUP) == []
    assert smsc.requests == []


async def test_admin_demoted_after_the_link_opened_gets_nowhere(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    bot.session.admins.discard((GROUP, ADMIN))
    [reply] = await say(dp, bot, ADMIN, f"/start {payload}")
    assert "Only administrators" in reply.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None


NOT_IN_GROUP = {"en": "I'm no longer in that group", "ru": "Меня больше нет в той группе"}


@pytest.mark.parametrize("language", ["en", "ru"])
@pytest.mark.parametrize("seen", [True, False], ids=["removal seen", "told by Telegram"])
async def test_link_to_a_group_that_removed_me_says_so(dp, bot, seen, language):
    payload = await handed_off(dp, bot)
    await remove_bot(dp, bot, seen=seen)
    [reply] = await say(dp, bot, ADMIN, f"/start {payload}", language=language)
    assert NOT_IN_GROUP[language] in reply.text and "/add" in reply.text
    assert "administrators" not in reply.text and "администратор" not in reply.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None


async def test_admin_who_adds_me_back_may_add_at_once(dp, bot):
    payload = await handed_off(dp, bot)
    await remove_bot(dp, bot, seen=False)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await dp.feed_update(bot, member_update(GROUP, joined=True))
    [offer] = await say(dp, bot, GROUP, "/add", user_id=ADMIN)  # within the minute
    assert "private chat" in offer.text


async def test_hand_off_checks_rights_afresh_at_each_write(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    lookups = len(bot.calls(GetChatMember))
    replies = await say(dp, bot, ADMIN, "right")
    assert any("registered" in r.text for r in replies)
    assert "registered the SMSC account" in bot.sent(GROUP)[-1].text
    assert len(bot.calls(GetChatMember)) == lookups + 1  # asked Telegram, not the cache
    bot.session.admins.discard((GROUP, ADMIN))
    [reply] = await say(dp, bot, ADMIN, "off")  # the threshold is a write too
    # The account was saved when SMSC accepted it: the closing says it stays, not "nothing",
    # and offers no command the user may no longer send there.
    assert "not one now" in reply.text and "Nothing was saved" not in reply.text
    assert "stays registered" in reply.text and "an administrator of that chat" in reply.text
    assert "/remove" not in reply.text and "/threshold" not in reply.text
    [account] = await accounts_of(sessionmaker, GROUP)
    assert account.threshold is None
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_a_group_that_removed_me_at_the_last_question_keeps_the_account_saved(
    dp, bot, sessionmaker, language
):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}", language=language)
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop", language=language)
    await say(dp, bot, ADMIN, "right", language=language)
    await remove_bot(dp, bot, seen=False)
    [reply] = await say(dp, bot, ADMIN, "500", language=language)
    assert NOT_IN_GROUP[language] in reply.text
    assert ("stays registered", "остаётся в ней подключённым")[language == "ru"] in reply.text
    assert ("added back", "добавят обратно")[language == "ru"] in reply.text
    assert "/remove" not in reply.text and "/add" not in reply.text
    [account] = await accounts_of(sessionmaker, GROUP)
    assert account.threshold is None


async def test_hand_off_goes_on_when_the_group_cannot_be_told(dp, bot, sessionmaker, caplog):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    bot.session.unwritable.add(GROUP)  # say, a closed topic or no right to post any more
    replies = await say(dp, bot, ADMIN, "right")
    assert "Below which balance" in replies[-1].text
    assert "hand-off notice not sent" in caplog.text
    await say(dp, bot, ADMIN, "500")  # the threshold, not another password
    [account] = await accounts_of(sessionmaker, GROUP)
    assert account.threshold == Decimal(500)


# ----- replacing credentials -----------------------------------------------------------


async def test_add_never_replaces_an_account_in_passing(dp, bot, smsc, sessionmaker):
    await say(dp, bot, GROUP, "/add shop right 100", user_id=ADMIN)
    smsc.accounts["mine"] = ("minepw", Decimal(5))
    requests = len(smsc.requests)
    [reply] = await say(dp, bot, GROUP, "/add shop minepw", user_id=ADMIN)
    assert "already watches" in reply.text and "confirm" in reply.text and "/remove" in reply.text
    assert len(smsc.requests) == requests
    [account] = await accounts_of(sessionmaker, GROUP)
    assert account.threshold == 100 and account.login == "shop"


async def test_demoted_admin_cannot_replace_credentials(dp, bot, smsc, sessionmaker):
    await say(dp, bot, GROUP, "/add shop right 100", user_id=ADMIN)
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    [question] = await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    assert "Replace" in question.text and "shop" in question.text
    bot.session.admins.discard((GROUP, ADMIN))
    [reply] = await press(dp, bot, ADMIN, ReplaceChoice(replace=True).pack(), ADMIN)
    assert "not one now" in reply.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None
    [account] = await accounts_of(sessionmaker, GROUP)
    assert account.threshold == 100


async def test_confirmed_replacement_repairs_a_changed_password(dp, bot, smsc, sessionmaker):
    await say(dp, bot, 1, "/add shop right 100")
    [before] = await accounts_of(sessionmaker, 1)
    smsc.accounts["shop"] = ("changed", Decimal(150))
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    await press(dp, bot, 1, ReplaceChoice(replace=True).pack(), 1)
    assert "will be replaced" in bot.calls(EditMessageText)[-1].text
    replies = await say(dp, bot, 1, "changed")
    assert any("150.00 RUB" in r.text for r in replies)
    [after] = await accounts_of(sessionmaker, 1)
    assert after.secret != before.secret and after.threshold == 100

    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    await press(dp, bot, 1, ReplaceChoice(replace=False).pack(), 1)
    assert "Nothing was changed" in bot.calls(EditMessageText)[-1].text
    assert await dp.fsm.get_context(bot, 1, 1).get_state() is None


async def test_a_lookalike_name_is_refused_a_stored_one_still_replaced(dp, bot, smsc, sessionmaker):
    lookalike = "\u0455hop"  # a Cyrillic dze for the "s": it reads "shop"
    [reply] = await say(dp, bot, 1, f"/add {lookalike} right")
    assert "Usage" in reply.text
    await say(dp, bot, 1, "/add")
    [reply] = await walk_to_secret(dp, bot, 1, 1, lookalike)
    assert "each word in one alphabet" in reply.text
    await say(dp, bot, 1, "/cancel")
    assert await accounts_of(sessionmaker, 1) == []
    # Saved before the rule: still an account whose password can be replaced.
    await say(dp, bot, 1, "/add shop right")
    async with sessionmaker() as session:
        await session.execute(update(Account).values(name=lookalike))
        await session.commit()
    [reply] = await say(dp, bot, 1, f"/add {lookalike} right")
    assert "already watches" in reply.text
    await say(dp, bot, 1, "/add")
    [question] = await walk_to_secret(dp, bot, 1, 1, lookalike)
    assert "Replace" in question.text


async def test_a_password_that_starts_with_a_slash_is_a_password(dp, bot, smsc, sessionmaker):
    smsc.accounts["shop"] = ("/s3cret", Decimal(150))
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    replies = await say(dp, bot, 1, "/s3cret")
    assert any("150.00 RUB" in r.text for r in replies)
    assert [int(d.chat_id) for d in bot.calls(DeleteMessage)] == [1]
    [account] = await accounts_of(sessionmaker, 1)
    assert account.login == "shop"
    # The bot's own commands stay commands at that step.
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "other")
    await say(dp, bot, 1, "/cancel@smsc_test_bot")
    assert await dp.fsm.get_context(bot, 1, 1).get_state() is None
    assert len(await accounts_of(sessionmaker, 1)) == 1


async def test_a_warning_level_under_the_replaced_accounts_critical_one_is_asked_again(
    dp, bot, sessionmaker
):
    await say(dp, bot, 1, "/add shop right 1000")
    await say(dp, bot, 1, "/threshold shop critical 500")
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    await press(dp, bot, 1, ReplaceChoice(replace=True).pack(), 1)
    await say(dp, bot, 1, "right")
    [reply] = await say(dp, bot, 1, "100")
    assert reply.text == (
        "The warning level can't be below the critical level of <b>shop</b> (500.00). "
        "Send a larger amount, or “off”."
    )
    [account] = await accounts_of(sessionmaker, 1)
    assert account.threshold == 1000
    [reply] = await say(dp, bot, 1, "700")
    assert "shop" in reply.text
    [account] = await accounts_of(sessionmaker, 1)
    assert (account.threshold, account.critical_threshold) == (700, 500)
    assert await dp.fsm.get_context(bot, 1, 1).get_state() is None


async def test_idle_dialog_expires_on_a_button_too(dp, bot):
    await say(dp, bot, 1, "/add")
    await dp.fsm.get_context(bot, 1, 1).update_data(active=time.time() - 31 * 60)
    [reply] = await press(dp, bot, 1, KindChoice(apikey=False).pack(), 1)
    assert "expired" in reply.text


async def test_idle_dialog_expires(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add")
    await walk_to_secret(dp, bot, 1, 1, "shop")
    state = dp.fsm.get_context(bot, 1, 1)
    await state.update_data(active=time.time() - 31 * 60)
    [reply] = await say(dp, bot, 1, "right")
    assert "expired" in reply.text
    assert await state.get_state() is None
    assert await accounts_of(sessionmaker, 1) == []
    assert len(bot.calls(DeleteMessage)) == 1  # it may be the password: not left in the chat
    [reply] = await say(dp, bot, 1, "right")
    assert "/help" in reply.text  # ...and the next message is chatter again


# ----- one user cannot lock /add out for everyone --------------------------------------


async def test_stranger_spends_one_failure_then_waits(dp, bot, smsc, sessionmaker, caplog):
    stranger, other = 5, 6
    await say(dp, bot, stranger, "/tz Europe/Moscow")
    [first] = await say(dp, bot, stranger, "/add shop guess1")
    assert "Not saved" in first.text
    requests = len(smsc.requests)
    for guess in ("guess2", "guess3"):
        [reply] = await say(dp, bot, stranger, f"/add shop {guess}")
        assert re.search(r"again at \d\d:\d\d \(Europe/Moscow\)", reply.text), reply.text
    assert len(smsc.requests) == requests
    assert "user:5" in caplog.text and "guess" not in caplog.text

    replies = await say(dp, bot, other, "/add shop right")
    assert "registered" in replies[-1].text
    # Re-adding what the bot already watches costs nothing, even for the stranger.
    replies = await say(dp, bot, stranger, "/add shop right")
    assert "registered" in replies[-1].text


async def test_watched_credentials_pass_a_spent_site_budget_after_a_restart(dp, bot, smsc):
    await say(dp, bot, 1, "/add shop right")
    dp.workflow_data["guard"] = BalanceGuard(smsc)  # a restart: the guard knows nothing
    for user in (5, 6, 7):
        [reply] = await say(dp, bot, user, f"/add guess{user} wrong")
        assert "Not saved" in reply.text
    [reply] = await say(dp, bot, 8, "/add new pw")
    assert "not checked until" in reply.text  # the site's budget is spent...
    replies = await say(dp, bot, 8, "/add shop right")
    assert "registered" in replies[-1].text  # ...but what a chat watches is known good


async def test_balance_of_a_watched_account_passes_a_spent_site_budget_after_a_restart(
    dp, bot, smsc
):
    await say(dp, bot, 1, "/add shop right")
    dp.workflow_data["guard"] = BalanceGuard(smsc)  # a restart: the guard knows nothing
    for user in (5, 6, 7):
        await say(dp, bot, user, f"/add guess{user} wrong")
    [reply] = await say(dp, bot, 1, "/balance")
    assert reply.text.startswith("<b>shop</b>: ") and "wrong passwords" not in reply.text


async def test_one_chat_spends_one_failure(dp, bot, smsc, sessionmaker):
    bot.session.admins.add((GROUP, MEMBER))
    await say(dp, bot, GROUP, "/add shop guess", user_id=ADMIN)
    smsc.accounts["other"] = ("pw", Decimal(1))
    [reply] = await say(dp, bot, GROUP, "/add other pw", user_id=MEMBER)
    assert "again at" in reply.text
    replies = await say(dp, bot, MEMBER, "/add other pw")  # their private chat is not held
    assert "registered" in replies[-1].text
