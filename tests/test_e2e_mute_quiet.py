"""The real bot process: a muted account tells nothing, and quiet hours make alerts silent."""

import time
from datetime import UTC, datetime, timedelta

from tests.e2e_helpers import say

USER = 901


def texts(telegram, words):
    return [m for m in telegram.sent(USER) if words in m.get("text", "")]


def test_mute_silences_and_quiet_hours_send_silently(bot_process, telegram, fake_smsc):
    fake_smsc.add_account("shop", "pw", balance="1500.00")
    bot_process.env["CHECK_INTERVAL_SECONDS"] = "1"
    bot_process.env["BALANCE_CACHE_SECONDS"] = "0"
    bot_process.start()
    say(telegram, USER, "/add shop pw 1000")
    now = datetime.now(UTC)  # the chat's zone is UTC: quiet from an hour ago for two hours
    span = f"{now - timedelta(hours=1):%H:%M}-{now + timedelta(hours=1):%H:%M}"
    _, reply = say(telegram, USER, f"/quiet {span}")
    assert "Quiet hours" in reply["text"]
    _, reply = say(telegram, USER, "/mute shop 1")
    assert "No alerts for" in reply["text"]
    fake_smsc.set_balance("shop", "900.00")
    time.sleep(3)  # checks that find it low
    assert texts(telegram, "Low balance") == []
    _, reply = say(telegram, USER, "/accounts")
    assert "Muted until" in reply["text"] and "State: warning" in reply["text"]
    say(telegram, USER, "/mute shop off")
    fake_smsc.set_balance("shop", "5900.00")
    telegram.wait_for(lambda: texts(telegram, "back to"), timeout=20)
    fake_smsc.set_balance("shop", "800.00")
    [alert] = telegram.wait_for(lambda: texts(telegram, "Low balance"), timeout=20)
    assert alert["disable_notification"] is True
