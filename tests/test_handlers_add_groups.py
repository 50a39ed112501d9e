"""/add in groups, through the real Dispatcher (tests/mocked_bot.py): a secret sent there is
deleted, however it comes, and the dialog holds when Telegram fails; the dialog's buttons out of
their step change nothing."""

import html
import re
import time

import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteMessage,
    EditMessageText,
    GetChatMember,
    SendMessage,
)
from aiogram.types import Message, MessageEntity, Update, User

from bot.telegram.handlers import add_common
from bot.telegram.handlers.add_dialog import KindChoice, ReplaceChoice, SiteChoice
from tests.add_fixtures import (
    accounts_of,
    dialog_at_secret,
    handed_off,
    media,
    press,
    remove_bot,
    reply_to_bot,
    walk_to_secret,
)
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.mocked_bot import message_update

pytestmark = pytest.mark.usefixtures("fast_retries")


# ----- secrets leave groups -------------------------------------------------------------


async def test_members_password_is_deleted_and_they_are_told_to_change_it(dp, bot, sessionmaker):
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=MEMBER)
    [delete] = bot.calls(DeleteMessage)
    assert int(delete.chat_id) == GROUP
    assert "only administrators" in replies[-1].text and "change it" in replies[-1].text
    assert await accounts_of(sessionmaker, GROUP) == []


async def test_members_undeletable_password_gets_a_warning(dp, bot):
    bot.session.undeletable.add(GROUP)
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=MEMBER)
    assert any("Delete it yourself" in r.text for r in replies)


async def test_failed_delete_is_retried(dp, bot):
    bot.session.fail(DeleteMessage, 0, "connection reset")
    bot.session.fail(DeleteMessage, 429, "Too Many Requests: retry after 1", retry_after=1)
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    assert len(bot.calls(DeleteMessage)) == 3
    assert "registered" in replies[-1].text
    assert all("could not delete" not in r.text for r in replies)


async def test_group_dialog_step_survives_a_failed_delete(dp, bot, sessionmaker):
    await dialog_at_secret(dp, bot, GROUP)
    for _ in range(add_common.DELETE_ATTEMPTS):
        bot.session.fail(DeleteMessage, 0, "connection reset")
    replies = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=reply_to_bot(GROUP))
    assert any("could not delete" in r.text for r in replies)
    assert any("registered" in r.text for r in replies)
    assert len(await accounts_of(sessionmaker, GROUP)) == 1


LOOKUP_FAILURES = [
    (0, "connection reset", None),
    (502, "Bad Gateway", None),
    (429, "Too Many Requests: retry after 5", 5),
]


@pytest.mark.parametrize(("status", "description", "retry_after"), LOOKUP_FAILURES)
async def test_password_leaves_even_when_the_rights_check_fails(
    dp, bot, sessionmaker, status, description, retry_after
):
    bot.session.fail(GetChatMember, status, description, retry_after=retry_after)
    [reply] = await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    assert len(bot.calls(DeleteMessage)) == 1
    assert "couldn't check your rights" in reply.text and "Send it again" in reply.text
    assert await accounts_of(sessionmaker, GROUP) == []
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    assert "registered" in replies[-1].text


async def test_demoted_admins_password_in_a_group_dialog_leaves(dp, bot, smsc, sessionmaker):
    await dialog_at_secret(dp, bot, GROUP)
    bot.session.admins.discard((GROUP, ADMIN))
    dp.workflow_data["admin_rights"].forget(GROUP, ADMIN)  # as a chat_member update does
    [reply] = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=reply_to_bot(GROUP))
    assert len(bot.calls(DeleteMessage)) == 1
    assert "not one now" in reply.text
    assert await dp.fsm.get_context(bot, GROUP, ADMIN).get_state() is None
    assert smsc.requests == []


async def test_group_dialogs_password_leaves_when_the_rights_check_fails(dp, bot, sessionmaker):
    await dialog_at_secret(dp, bot, GROUP)
    dp.workflow_data["admin_rights"].forget(GROUP, ADMIN)
    bot.session.fail(GetChatMember, 502, "Bad Gateway")
    [reply] = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=reply_to_bot(GROUP))
    assert len(bot.calls(DeleteMessage)) == 1
    assert "Send it again" in reply.text
    replies = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=reply_to_bot(GROUP))
    assert any("registered" in r.text for r in replies)


async def test_anonymous_admin_is_told_how_to_add_without_a_dialog(dp, bot):
    # No link (no one to bind it to), no dialog here (the group's answers would be taken for
    # the admin's, and whoever pressed its button named).
    [reply] = await say(dp, bot, GROUP, "/add", sender_chat=True, user_id=1087968824)
    assert reply.reply_markup is None
    assert "You post anonymously" in reply.text and "/add &lt;login&gt;" in reply.text


async def test_anonymous_admin_cannot_continue_another_admins_add_here(dp, bot):
    anonymous = 77  # their real id, which a button press carries
    bot.session.admins.add((GROUP, anonymous))
    bot.session.anonymous.add((GROUP, anonymous))
    [offer] = await say(dp, bot, GROUP, "/add", user_id=ADMIN)
    before = len(bot.session.requests)
    sent = await press(
        dp, bot, GROUP, offer.reply_markup.inline_keyboard[-1][0].callback_data, anonymous
    )
    assert sent == []  # nothing in the group names them
    [answer] = [r for r in bot.session.requests[before:] if isinstance(r, AnswerCallbackQuery)]
    assert "You post anonymously" in answer.text and answer.show_alert
    assert await dp.fsm.get_context(bot, GROUP, anonymous).get_state() is None


async def test_members_add_without_a_secret_is_left_alone(dp, bot):
    [reply] = await say(dp, bot, GROUP, "/add shop", user_id=MEMBER)
    assert "only administrators" in reply.text
    assert bot.calls(DeleteMessage) == []


async def test_hand_off_to_a_chat_that_is_gone_saves_nothing(dp, bot, smsc, sessionmaker):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    state = dp.fsm.get_context(bot, ADMIN, ADMIN)
    await state.update_data(target_chat=GROUP - 1)  # as after the group's upgrade
    replies = await say(dp, bot, ADMIN, "right")
    assert "gone or has changed" in replies[-1].text  # not "you are no admin" of the old id
    assert smsc.requests == []


@pytest.mark.parametrize("seen", [True, False], ids=["removal seen", "told by Telegram"])
async def test_hand_off_to_a_group_that_removed_me_saves_nothing(dp, bot, smsc, sessionmaker, seen):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}", language="ru")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    await remove_bot(dp, bot, seen=seen)
    replies = await say(dp, bot, ADMIN, "right")
    assert len(bot.calls(DeleteMessage)) == 1
    assert "Меня больше нет в той группе" in replies[-1].text  # not "you are no admin"
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() is None
    assert smsc.requests == []
    assert await accounts_of(sessionmaker, GROUP) == []


async def test_password_sent_late_in_a_group_is_still_deleted(dp, bot, sessionmaker):
    await dialog_at_secret(dp, bot, GROUP)
    await dp.fsm.get_context(bot, GROUP, ADMIN).update_data(active=time.time() - 31 * 60)
    replies = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=reply_to_bot(GROUP))
    assert "expired" in replies[-1].text
    assert len(bot.calls(DeleteMessage)) == 1
    assert await accounts_of(sessionmaker, GROUP) == []


@pytest.mark.parametrize("index", [-7, 99])
async def test_forged_site_button_is_refused(dp, bot, index):
    await say(dp, bot, 1, "/add")
    await press(dp, bot, 1, KindChoice(apikey=False).pack(), 1)
    before = len(bot.session.requests)
    await press(dp, bot, 1, SiteChoice(index=index).pack(), 1)
    [answer] = [r for r in bot.session.requests[before:] if isinstance(r, AnswerCallbackQuery)]
    assert answer.text == "This button is out of date."
    assert await dp.fsm.get_context(bot, 1, 1).get_state() == "AddAccount:site"


async def test_members_secret_in_another_case_is_deleted(dp, bot):
    replies = await say(dp, bot, GROUP, "/ADD shop right", user_id=MEMBER)
    assert len(bot.calls(DeleteMessage)) == 1
    assert "change it in SMSC" in replies[-1].text


async def test_rights_check_failing_keeps_the_dialog(dp, bot, sessionmaker):
    payload = await handed_off(dp, bot)
    await say(dp, bot, ADMIN, f"/start {payload}")
    await walk_to_secret(dp, bot, ADMIN, ADMIN, "shop")
    bot.session.fail(GetChatMember, 0, "connection reset")
    [reply] = await say(dp, bot, ADMIN, "right")
    assert "Send it again" in reply.text
    assert await dp.fsm.get_context(bot, ADMIN, ADMIN).get_state() == "AddAccount:secret"
    replies = await say(dp, bot, ADMIN, "right")
    assert any("registered" in r.text for r in replies)


async def test_lost_answer_to_a_delete_is_no_failure(dp, bot):
    bot.session.fail(DeleteMessage, 0, "connection reset")
    bot.session.fail(DeleteMessage, 400, "Bad Request: message to delete not found")
    replies = await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    assert all("could not delete" not in r.text for r in replies)


async def test_start_in_a_group_costs_no_lookup(dp, bot):
    for user in range(100, 120):
        await say(dp, bot, GROUP, "/start", user_id=user)
    assert bot.calls(GetChatMember) == []


async def test_members_secret_in_a_photo_caption_is_deleted(dp, bot):
    message = message_update(GROUP, "/add shop right", user_id=MEMBER).message
    captioned = message.model_copy(
        update={"text": None, "entities": None, "caption": message.text}
        | {"caption_entities": message.entities}
    )
    await dp.feed_update(bot, Update(update_id=10**6, message=captioned))
    assert len(bot.calls(DeleteMessage)) == 1


@pytest.mark.parametrize(
    "data", [KindChoice(apikey=True).pack(), ReplaceChoice(replace=True).pack()]
)
async def test_dialog_buttons_out_of_their_step_change_nothing(dp, bot, data):
    await say(dp, bot, 1, "/add")
    await press(dp, bot, 1, KindChoice(apikey=False).pack(), 1)
    before = len(bot.session.requests)
    await press(dp, bot, 1, data, 1)
    assert not [r for r in bot.session.requests[before:] if isinstance(r, EditMessageText)]
    assert await dp.fsm.get_context(bot, 1, 1).get_state() == "AddAccount:site"


@pytest.mark.parametrize("user_id", [ADMIN, MEMBER])
async def test_a_password_edited_into_an_add_is_deleted_and_not_taken(
    dp, bot, sessionmaker, user_id
):
    sent = message_update(GROUP, "/add shop right", user_id=user_id).message
    edited = Update(update_id=10**6, edited_message=sent)
    before = len(bot.session.requests)
    await dp.feed_update(bot, edited)
    answers = bot.session.requests[before:]
    [delete] = [call for call in answers if isinstance(call, DeleteMessage)]
    assert (int(delete.chat_id), delete.message_id) == (GROUP, sent.message_id)
    [reply] = [call for call in answers if isinstance(call, SendMessage)]
    assert "I deleted your edited /add" in reply.text and "change it in SMSC" in reply.text
    assert await accounts_of(sessionmaker, GROUP) == []
    assert "edited_message" in dp.resolve_used_update_types()


# ----- a password prompt whose dialog is gone -------------------------------------------

UPGRADED = -1000100500  # the group's id as a supergroup


def bot_said(chat_id: int, text: str) -> Message:
    """The bot's message as Telegram hands it back: its mention of someone (sent as a
    tg://user link) a text mention of that user."""
    mention = re.match(r'<a href="tg://user\?id=(\d+)">([^<]*)</a>', text)
    if mention is None:
        return reply_to_bot(chat_id).model_copy(update={"text": text})
    user_id, name = int(mention[1]), html.unescape(mention[2])
    entity = MessageEntity(
        type="text_mention",
        offset=0,
        length=len(name.encode("utf-16-le")) // 2,
        user=User(id=user_id, is_bot=False, first_name=name),
    )
    plain = name + text[mention.end() :]
    return reply_to_bot(chat_id).model_copy(update={"text": plain, "entities": [entity]})


ENDED = {
    "en": "That /add dialog has ended (the group became a supergroup",
    "ru": "Этот диалог /add уже закончился (группа стала супергруппой",
}


@pytest.mark.parametrize(
    ("gone", "language", "kind"),
    [
        ("group upgraded", "en", "text"),
        ("bot restarted", "en", "text"),
        ("group upgraded", "ru", "text"),
        ("bot restarted", "ru", "photo"),  # the password in its caption
    ],
)
async def test_password_answering_a_prompt_of_a_dialog_gone_is_deleted(
    dp, bot, smsc, sessionmaker, gone, language, kind
):
    """The group became a supergroup (a new id: the dialog stays with the old one), or a
    restart lost the dialog, while the password was asked: the answer to the prompt is
    deleted, and the admin told the dialog ended."""
    [offer] = await say(dp, bot, GROUP, "/add", user_id=ADMIN, language=language)
    await press(dp, bot, GROUP, offer.reply_markup.inline_keyboard[-1][0].callback_data, ADMIN)
    [ask] = await walk_to_secret(dp, bot, GROUP, ADMIN, "shop", reply_to=reply_to_bot(GROUP))
    chat_id = GROUP
    if gone == "group upgraded":
        chat_id = UPGRADED
        bot.session.admins.add((chat_id, ADMIN))
        service = message_update(GROUP, "-", user_id=ADMIN).message
        service = service.model_copy(update={"text": None, "migrate_to_chat_id": chat_id})
        await dp.feed_update(bot, Update(update_id=10**6 + 1, message=service))
    else:
        dp.fsm.storage = MemoryStorage()
    before, sent = len(bot.calls(DeleteMessage)), len(bot.calls(SendMessage))
    answer = message_update(chat_id, "right", user_id=ADMIN, reply_to=bot_said(chat_id, ask.text))
    if kind == "photo":
        answer = media(answer, "photo", caption="right")
    await dp.feed_update(bot, answer)
    [reply] = bot.calls(SendMessage)[sent:]
    [delete] = bot.calls(DeleteMessage)[before:]
    assert int(delete.chat_id) == chat_id
    assert reply.text.startswith(ENDED[language])
    assert "right" not in reply.text
    assert smsc.requests == []
    assert await accounts_of(sessionmaker, chat_id) == []


async def test_a_members_reply_to_an_admins_live_prompt_stays(dp, bot, smsc, sessionmaker):
    """Another member answering the prompt aimed at the admin ("wait, use the API key") keeps
    their message, and the admin's dialog goes on."""
    [offer] = await say(dp, bot, GROUP, "/add", user_id=ADMIN)
    await press(dp, bot, GROUP, offer.reply_markup.inline_keyboard[-1][0].callback_data, ADMIN)
    [ask] = await walk_to_secret(dp, bot, GROUP, ADMIN, "shop", reply_to=reply_to_bot(GROUP))
    prompt = bot_said(GROUP, ask.text)
    await say(dp, bot, GROUP, "wait, use the API key", user_id=MEMBER, reply_to=prompt)
    assert bot.calls(DeleteMessage) == []
    *_, asked = await say(dp, bot, GROUP, "right", user_id=ADMIN, reply_to=prompt)
    assert "Below which balance should I warn?" in asked.text  # the password was taken
    assert len(bot.calls(DeleteMessage)) == 1  # the admin's password, deleted


async def test_other_replies_to_the_bot_without_a_dialog_stay(dp, bot):
    await say(dp, bot, GROUP, "thanks", user_id=MEMBER, reply_to=bot_said(GROUP, "Low balance"))
    assert bot.calls(DeleteMessage) == []
