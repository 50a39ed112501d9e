"""The real bot process in an ops group and a forum: who may do what, and where passwords go."""

import pytest

from tests.e2e_helpers import say
from tests.fake_telegram import BOT_USERNAME

GROUP = -100777
ADMIN, MEMBER = 601, 602


@pytest.fixture
def running(bot_process, fake_smsc, telegram):
    fake_smsc.add_account("ops", "pa55word", balance="250.50", credit="100.00")
    telegram.set_member_status(GROUP, ADMIN, "administrator")
    telegram.set_member_status(GROUP, MEMBER, "member")
    return bot_process.start()


def in_group(**kwargs):
    return {"chat_type": "supergroup", "title": "Ops", **kwargs}


def test_member_refused_admin_allowed_password_deleted(running, telegram):
    message_id, reply = say(
        telegram, GROUP, f"/add@{BOT_USERNAME} ops pa55word", **in_group(user_id=MEMBER)
    )
    assert "only administrators" in reply["text"] and "change it in SMSC" in reply["text"]
    assert message_id in telegram.deleted(GROUP), "a member's password leaves the group too"

    message_id, reply = say(telegram, GROUP, "/add ops pa55word 300", **in_group(user_id=ADMIN))
    assert message_id in telegram.deleted(GROUP)
    assert "registered" in reply["text"] and "250.50" in reply["text"]
    assert "credit 100.00" in reply["text"]

    _, reply = say(telegram, GROUP, f"/balance@{BOT_USERNAME}", **in_group(user_id=MEMBER))
    assert "250.50" in reply["text"] and "below 300.00" in reply["text"]
    _, reply = say(telegram, GROUP, "/remove ops", **in_group(user_id=MEMBER))
    assert "only administrators" in reply["text"]
    assert all("pa55word" not in m.get("text", "") for m in telegram.sent(GROUP))


def test_password_delete_is_retried_or_the_sender_warned(running, telegram):
    telegram.fail("deleteMessage", status=429, retry_after=1)
    telegram.fail("deleteMessage", status=502)
    message_id, reply = say(telegram, GROUP, "/add ops pa55word", **in_group(user_id=ADMIN))
    assert message_id in telegram.deleted(GROUP)
    assert "registered" in reply["text"]
    assert len(telegram.calls_of("deleteMessage", GROUP)) == 3

    telegram.set_can_delete(GROUP, False)
    say(telegram, GROUP, "/add ops pa55word", expect=2, **in_group(user_id=MEMBER))
    assert any("Delete it yourself" in m["text"] for m in telegram.sent(GROUP)[-2:])


def test_anonymous_admin_may_change(running, telegram):
    _, reply = say(telegram, GROUP, "/add ops pa55word", **in_group(sender_chat_id=GROUP))
    assert "registered" in reply["text"]


def test_private_hand_off_registers_for_the_group(running, telegram):
    _, reply = say(telegram, GROUP, "/add", **in_group(user_id=ADMIN))
    link = reply["reply_markup"]["inline_keyboard"][0][0]["url"]
    payload = link.split("start=", 1)[1]

    assert str(GROUP) not in payload  # a random reference, not the group in clear

    # A member who follows the link gets nowhere.
    _, refusal = say(telegram, MEMBER, f"/start {payload}")
    assert "belongs to the person who sent /add" in refusal["text"]

    _, reply = say(telegram, ADMIN, f"/start {payload}", expect=2)
    walk_to_secret(telegram, reply, "ops")
    group_before = len(telegram.sent(GROUP))
    message_id, _ = say(telegram, ADMIN, "pa55word", expect=2)
    assert message_id in telegram.deleted(ADMIN)
    telegram.wait_for(lambda: len(telegram.sent(GROUP)) > group_before)
    assert "registered the SMSC account" in telegram.sent(GROUP)[-1]["text"]

    _, reply = say(telegram, GROUP, "/accounts", **in_group(user_id=MEMBER))
    assert "ops" in reply["text"] and "250.50" in reply["text"]
    assert all("pa55word" not in line for line in telegram.transcript(GROUP))

    _, again = say(telegram, ADMIN, f"/start {payload}")
    assert "already used" in again["text"]


def test_demoted_admin_cannot_finish_a_hand_off(running, telegram, fake_smsc):
    _, reply = say(telegram, GROUP, "/add", **in_group(user_id=ADMIN))
    payload = reply["reply_markup"]["inline_keyboard"][0][0]["url"].split("start=", 1)[1]
    _, reply = say(telegram, ADMIN, f"/start {payload}", expect=2)
    walk_to_secret(telegram, reply, "ops")
    telegram.set_member_status(GROUP, ADMIN, "member")
    _, reply = say(telegram, ADMIN, "pa55word")
    assert "not one now" in reply["text"]
    assert fake_smsc.requests == []
    _, reply = say(telegram, GROUP, "/accounts", **in_group(user_id=MEMBER))
    assert "ops" not in reply["text"]


def test_stranger_cannot_lock_out_add(running, telegram, fake_smsc):
    """A stranger's wrong passwords in private cost SMSC one failure; others still add."""
    stranger, other = 700, 701
    _, reply = say(telegram, stranger, "/add ops guess1")
    assert "Not saved" in reply["text"]
    for guess in ("guess2", "guess3"):
        _, reply = say(telegram, stranger, f"/add ops {guess}")
        assert "again at" in reply["text"]
    assert [r.outcome for r in fake_smsc.requests] == ["error:2"]
    _, reply = say(telegram, other, "/add ops pa55word")
    assert "registered" in reply["text"]


def walk_to_secret(telegram, reply, name):
    """From the question of how the account signs in to the one for its secret."""
    chat_id = reply["chat"]["id"]
    kind = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.callback(chat_id, reply["message_id"], kind)
    telegram.wait_for(lambda: telegram.edits(chat_id))
    site = telegram.edits(chat_id)[-1].params["reply_markup"]["inline_keyboard"][0][0]
    before = len(telegram.sent(chat_id))
    telegram.callback(chat_id, reply["message_id"], site["callback_data"])
    telegram.wait_for(lambda: len(telegram.sent(chat_id)) > before)
    say(telegram, chat_id, name)


def test_forum_topic_replies_stay_in_topic(running, telegram):
    _, reply = say(telegram, GROUP, "/add ops pa55word", **in_group(user_id=ADMIN, thread_id=77))
    assert reply.get("message_thread_id") == 77


def test_burst_of_balance_requests_stays_within_smsc_limit(running, telegram, fake_smsc):
    say(telegram, GROUP, "/add ops pa55word", **in_group(user_id=ADMIN))
    fake_smsc.reset()
    before = len(telegram.sent(GROUP))
    for _ in range(30):
        telegram.message(GROUP, "/balance", **in_group(user_id=MEMBER))
    telegram.wait_for(lambda: len(telegram.sent(GROUP)) >= before + 30, timeout=30)
    answers = telegram.sent(GROUP)[before:]
    assert all("250.50" in m["text"] for m in answers), answers
    assert fake_smsc.max_in_window("ops") <= 10
    assert not [r for r in fake_smsc.requests if r.outcome.startswith("error")]


def test_removed_bot_stops_and_resumes(running, telegram):
    say(telegram, GROUP, "/add ops pa55word", **in_group(user_id=ADMIN))
    telegram.my_chat_member(GROUP, "kicked", chat_type="supergroup")
    telegram.my_chat_member(GROUP, "member", chat_type="supergroup")
    _, reply = say(telegram, GROUP, "/accounts", **in_group(user_id=MEMBER))
    assert "ops" in reply["text"]


def test_group_upgrade_keeps_accounts(running, bot_process, telegram):
    old, new = -4242, GROUP - 1
    telegram.set_member_status(old, ADMIN, "administrator")
    say(telegram, old, "/add ops pa55word", chat_type="group", title="Ops", user_id=ADMIN)
    telegram.migrate(old, new)
    # The service message is handled concurrently with later updates: wait for it.
    telegram.wait_for(lambda: "chat migrated" in bot_process.log())
    _, reply = say(telegram, new, "/accounts", **in_group(user_id=ADMIN))
    assert "ops" in reply["text"]
