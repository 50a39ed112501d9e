"""The real bot process against the fake Bot API and the fake SMSC: a private chat's walk."""

import pytest

from tests.e2e_helpers import say

USER = 501


def last_text(telegram, chat_id):
    return telegram.sent(chat_id)[-1].get("text", "")


@pytest.fixture
def running(bot_process, fake_smsc):
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00", currency="RUB")
    return bot_process.start()


def test_private_chat_walk(running, telegram):
    _, reply = say(telegram, USER, "/start")
    assert "/add" in reply["text"]

    message_id, reply = say(telegram, USER, "/add shop s3cret! 1000")
    assert message_id in telegram.deleted(USER), "the password message is deleted"
    assert "shop" in reply["text"] and "1,500.00 RUB" in reply["text"]

    _, reply = say(telegram, USER, "/balance")
    assert "1,500.00 RUB" in reply["text"]
    _, reply = say(telegram, USER, "/threshold shop 2 000")
    assert "2,000.00" in reply["text"]
    _, reply = say(telegram, USER, "/interval shop 30")
    assert "every 30 min" in reply["text"]
    _, reply = say(telegram, USER, "/accounts")
    assert "2,000.00" in reply["text"] and "every 30 min" in reply["text"]

    _, reply = say(telegram, USER, "/remove shop")
    yes = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.callback(USER, reply["message_id"], yes)
    telegram.wait_for(
        lambda: any("Removed" in e.params.get("text", "") for e in telegram.edits(USER))
    )
    _, reply = say(telegram, USER, "/accounts")
    assert "No SMSC accounts" in reply["text"]
    transcript = "\n".join(telegram.transcript(USER))
    assert "s3cret!" not in transcript.replace("Ann: /add shop s3cret! 1000", "")


def test_dialog_in_russian(running, telegram):
    _, reply = say(telegram, USER, "/add", language_code="ru")
    assert "Как этот аккаунт входит" in reply["text"]
    login_button = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.callback(USER, reply["message_id"], login_button, language_code="ru")
    telegram.wait_for(
        lambda: any("сайте" in e.params.get("text", "") for e in telegram.edits(USER))
    )
    site_message = telegram.sent(USER)[-1]
    site_button = site_message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    before = len(telegram.sent(USER))
    telegram.callback(USER, site_message["message_id"], site_button, language_code="ru")
    telegram.wait_for(lambda: len(telegram.sent(USER)) > before)
    assert "логин" in last_text(telegram, USER)
    _, reply = say(telegram, USER, "shop", language_code="ru")
    assert "пароль" in reply["text"]
    message_id, reply = say(telegram, USER, "s3cret!", language_code="ru", expect=2)
    assert message_id in telegram.deleted(USER)
    assert "При каком балансе" in reply["text"]
    assert any("1\xa0500,00 RUB" in m.get("text", "") for m in telegram.sent(USER))
    _, reply = say(telegram, USER, "1 000,5", language_code="ru")
    assert "1\xa0000,50" in reply["text"] and "Порог" in reply["text"]
    print("\n".join(telegram.transcript(USER)))


def test_secrets_never_logged_even_at_debug(bot_process, fake_smsc, telegram):
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00")
    bot_process.env["LOG_LEVEL"] = "DEBUG"
    bot_process.start()
    say(telegram, USER, "/add shop s3cret!")
    # Another name: the wrong password goes to SMSC and is refused there, not by the bot.
    _, reply = say(telegram, USER, "/add other wr0ngpass")
    assert "Not saved" in reply["text"]
    say(telegram, USER, "/balance")
    log = bot_process.log()
    assert "/add shop" in "\n".join(telegram.transcript(USER))
    assert "s3cret!" not in log and "wr0ngpass" not in log
    assert bot_process.env["SECRET_KEY"] not in log


def test_wrong_passwords_before_a_restart_still_count_after_it(bot_process, fake_smsc, telegram):
    """Three users mistype passwords in /add, the bot is restarted (a setting changed), a
    fourth tries: SMSC counts the 30 minutes across the restart, and so does the bot, or the
    next two wrong ones would get the server's IP blocked for every chat."""
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00")
    bot_process.start()
    for user in (601, 602, 603):
        _, reply = say(telegram, user, f"/add shop wrong{user}")
        assert "refused" in reply["text"]
    assert len(fake_smsc.requests) == 3
    assert bot_process.stop() == 0
    bot_process.start()
    _, reply = say(telegram, 604, "/add shop wrong604")
    assert "new logins are not checked until" in reply["text"]
    assert len(fake_smsc.requests) == 3  # not sent
