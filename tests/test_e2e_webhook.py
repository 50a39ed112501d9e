"""Webhook mode, the real bot process against the fake Bot API, which delivers updates to the
bot's HTTP port as Telegram (through a reverse proxy) would; and polling taking over from it."""

import json
import signal
import time
import urllib.error
import urllib.request

import pytest

from tests.bot_process import TOKEN, WEBHOOK_SECRET, WEBHOOK_URL, BotProcess
from tests.e2e_helpers import free_port, health_becomes, metric, say
from tests.fake_telegram import SECRET_HEADER

USER = 931


@pytest.fixture
def webhook_bot(telegram, fake_smsc, tmp_path, installed_bot):
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00", currency="RUB")
    process = BotProcess(
        telegram, fake_smsc, tmp_path, webhook=True, PYTHONPATH=str(installed_bot.site)
    )
    yield process
    if process.process is not None:
        assert process.stop() == 0, process.log()
    assert "Traceback" not in process.log(), process.log()


def post(url: str, body: dict, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_updates_come_through_the_webhook_and_never_through_get_updates(webhook_bot, telegram):
    webhook_bot.start()
    [call] = telegram.calls_of("setWebhook")
    assert call.params["url"] == WEBHOOK_URL
    assert call.params["secret_token"] == WEBHOOK_SECRET
    assert {"message", "callback_query", "my_chat_member"} <= set(call.params["allowed_updates"])

    _, reply = say(telegram, USER, "/start")
    assert "/add" in reply["text"]
    say(telegram, USER, "/add shop s3cret! 1000")
    _, reply = say(telegram, USER, "/balance")
    assert "1,500.00 RUB" in reply["text"]
    # A delivery is recorded once the bot has answered it, after its reply and its metrics.
    telegram.wait_for(lambda: len(telegram.deliveries) == 3)
    assert {(d.address, d.error) for d in telegram.deliveries} == {(webhook_bot.http, None)}

    # /healthz and /metrics are served on the webhook's port.
    assert health_becomes(webhook_bot.http, 200) == {"status": "ok"}
    assert metric(webhook_bot.http, "smsc_bot_update_handling_seconds_count") == 3

    started = time.monotonic()
    assert webhook_bot.stop(signal.SIGTERM) == 0, webhook_bot.log()
    assert time.monotonic() - started < 2
    assert telegram.calls_of("getUpdates") == []
    assert WEBHOOK_SECRET not in webhook_bot.log()


def test_a_request_without_the_secret_is_refused_and_not_handled(webhook_bot, telegram):
    webhook_bot.start()
    say(telegram, USER, "/start")
    handled = metric(webhook_bot.http, "smsc_bot_update_handling_seconds_count")
    update = {
        "update_id": 999,
        "message": {
            "message_id": 50,
            "date": int(time.time()),
            "chat": {"id": USER, "type": "private", "first_name": "Eve"},
            "from": {"id": USER, "is_bot": False, "first_name": "Eve"},
            "text": "/balance",
            "entities": [{"type": "bot_command", "offset": 0, "length": 8}],
        },
    }
    hook = f"{webhook_bot.http}/tg/hook"
    assert post(hook, update, {SECRET_HEADER: "wrong-secret"}) == 401
    assert post(hook, update, {}) == 401
    assert post(hook, update, {SECRET_HEADER: WEBHOOK_SECRET.upper()}) == 401
    assert metric(webhook_bot.http, "smsc_bot_update_handling_seconds_count") == handled
    assert len(telegram.sent(USER)) == 1  # the answer to /start only


def test_healthz_tells_when_telegram_cannot_deliver(webhook_bot, telegram):
    # getWebhookInfo every second: half of HEALTH_TELEGRAM_SECONDS.
    webhook_bot.env["HEALTH_TELEGRAM_SECONDS"] = "2"
    webhook_bot.start()
    assert health_becomes(webhook_bot.http, 200) == {"status": "ok"}
    dead = f"http://127.0.0.1:{free_port()}"
    telegram.deliver_to(dead)  # the proxy points nowhere
    telegram.message(USER, "/start")
    problems = health_becomes(webhook_bot.http, 503)["problems"]
    assert problems == [
        "telegram: webhook: Telegram cannot deliver updates (Connection refused), 1 waiting"
    ]
    telegram.deliver_to(dead, webhook_bot.http)  # retried at the next address
    telegram.wait_for(lambda: telegram.sent(USER))
    health_becomes(webhook_bot.http, 200)


def test_a_url_telegram_refuses_ends_the_start_with_one_line(webhook_bot, telegram):
    telegram.fail(
        "setWebhook", status=400, description="Bad Request: bad webhook: Failed to resolve host"
    )
    webhook_bot.launch()
    assert webhook_bot.process.wait(timeout=30) == 1
    webhook_bot.process = None
    log = webhook_bot.log()
    assert "error: WEBHOOK_URL was refused by Telegram (Bad Request: bad webhook: " in log, log
    assert "Traceback" not in log


def test_polling_removes_a_webhook_left_behind_and_keeps_its_updates(bot_process, telegram):
    setup = urllib.request.Request(
        f"{telegram.url}/bot{TOKEN}/setWebhook",
        data=json.dumps({"url": WEBHOOK_URL}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(setup, timeout=5):
        pass  # as webhook mode left it; no replica is there to deliver to
    telegram.message(USER, "/start")
    bot_process.start()
    telegram.wait_for(lambda: telegram.sent(USER))
    [call] = telegram.calls_of("deleteWebhook")
    assert not call.params.get("drop_pending_updates")
    assert telegram.webhook is None


def test_dialogs_live_in_redis_and_outlast_a_restart(
    webhook_bot, telegram, redis_url, postgres_url, tmp_path
):
    import redis

    webhook_bot.env.update(REDIS_URL=redis_url, DATABASE_URL=postgres_url)
    webhook_bot.start()
    _, reply = say(telegram, USER, "/add")
    login_button = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.callback(USER, reply["message_id"], login_button)
    telegram.wait_for(lambda: telegram.edits(USER))
    site_message = telegram.sent(USER)[-1]
    site_button = site_message["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    before = len(telegram.sent(USER))
    telegram.callback(USER, site_message["message_id"], site_button)
    telegram.wait_for(lambda: len(telegram.sent(USER)) > before)
    with redis.Redis.from_url(redis_url) as client:
        assert client.keys("smscbot:fsm:*"), "the dialog's state is in Redis"

    # Another process of the same bot takes over in the middle of the dialog.
    assert webhook_bot.stop() == 0
    other = webhook_bot.replica(tmp_path / "other")
    (tmp_path / "other").mkdir()
    telegram.deliver_to(other.http)
    other.start()
    try:
        _, reply = say(telegram, USER, "shop")
        assert "password" in reply["text"]
        _, reply = say(telegram, USER, "s3cret!", expect=2)
        assert "Below which balance" in reply["text"]
    finally:
        assert other.stop() == 0, other.log()
    assert "Traceback" not in other.log()
