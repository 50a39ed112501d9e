"""The real bot process watched the way an ops team would: /healthz, /metrics, a push monitor,
JSON logs and /status, against the loopback fakes, with thresholds of seconds."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e_helpers import (
    PushMonitor,
    free_port,
    get,
    health_becomes,
    metric,
    say,
    texts,
    wait_until,
)

USER, STRANGER = 901, 902


def balance_of(base: str, account: str, site: str) -> float | None:
    labels = {"account": account, "login": account, "site": site, "chat_id": str(USER)}
    return metric(base, "smsc_bot_account_balance", **labels)


def health_command(bot_process) -> tuple[int, str]:
    """The image's health check, `smsc-balance-bot health`, with the bot's settings."""
    command = [str(Path(sys.executable).with_name("smsc-balance-bot")), "health"]
    done = subprocess.run(
        command, env=bot_process.env, cwd=bot_process.cwd, capture_output=True, timeout=30
    )
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.fixture
def monitor():
    with PushMonitor() as server:
        yield server


@pytest.fixture
def base(bot_process, fake_smsc):
    port = free_port()
    fake_smsc.add_account("shop", "s3cret!", balance="1500.00")
    bot_process.env.update(
        HTTP_PORT=str(port),
        CHECK_INTERVAL_SECONDS="1",
        BALANCE_CACHE_SECONDS="0",
        HEALTH_TELEGRAM_SECONDS="2",
        HEALTH_OUTBOX_SECONDS="2",
    )
    return f"http://127.0.0.1:{port}"


def test_healthz_and_heartbeat_follow_telegram_and_the_outbox(
    bot_process, base, telegram, fake_smsc, monitor
):
    bot_process.env.update(HEARTBEAT_URL=f"{monitor.url}/api/push/k3y", HEARTBEAT_SECONDS="0.2")
    bot_process.start()
    assert health_becomes(base, 200) == {"status": "ok"}
    assert health_command(bot_process) == (0, "healthy\n")
    wait_until(lambda: monitor.beats >= 3)

    # The Bot API stops answering polls for a while.
    telegram.fail("getUpdates", status=502, times=3)
    telegram.message(USER, "/start")  # ends the long poll under way
    assert any("telegram" in problem for problem in health_becomes(base, 503)["problems"])
    beats = monitor.beats
    time.sleep(1)
    assert get(f"{base}/healthz")[0] == 503
    code, said = health_command(bot_process)
    assert code == 1 and said.startswith("unhealthy: telegram: no answer to getUpdates for ")
    assert monitor.beats <= beats + 1  # at most one that had passed its look at health
    wait_until(lambda: len([c for c in telegram.calls_of("getUpdates") if c.error]) >= 3)
    telegram.message(USER, "/help")  # answered at once by the next poll
    health_becomes(base, 200)
    beats = monitor.beats
    wait_until(lambda: monitor.beats > beats + 2)

    # An alert stuck behind 429s.
    say(telegram, USER, "/add shop s3cret! 1000")
    telegram.fail("sendMessage", status=429, retry_after=1, chat_id=USER, times=4)
    fake_smsc.set_balance("shop", "900.00")
    assert any("outbox" in problem for problem in health_becomes(base, 503)["problems"])
    telegram.wait_for(lambda: texts(telegram, USER, "Low balance"), timeout=20)
    health_becomes(base, 200)


def test_metrics_status_and_json_logs(bot_process, base, telegram, fake_smsc):
    bot_process.env.update(ADMIN_IDS=f"{USER}", LOG_FORMAT="json")
    bot_process.start()
    say(telegram, USER, "/add shop s3cret! 1000")
    site = fake_smsc.url.removeprefix("http://")
    assert balance_of(base, "shop", site) == 1500
    wait_until(lambda: metric(base, "smsc_bot_checks_total", outcome="ok"))

    _, reply = say(telegram, USER, "/status")
    assert "version" in reply["text"] and "Accounts: 1, active chats: 1" in reply["text"]
    assert "Checks in the last hour: ok" in reply["text"]
    _, reply = say(telegram, STRANGER, "/status")
    assert "I don't know that command" in reply["text"]

    _, reply = say(telegram, USER, "/remove shop")
    yes = reply["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    telegram.callback(USER, reply["message_id"], yes)
    wait_until(lambda: balance_of(base, "shop", site) is None)

    lines = [json.loads(line) for line in bot_process.log().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    # The fields a line is about are fields of the object too.
    [listening] = [line for line in lines if line["message"].startswith("http listening")]
    assert listening["port"] == int(base.rsplit(":", 1)[1]) and listening["level"] == "INFO"
    assert "s3cret!" not in bot_process.log()
    assert bot_process.env["SECRET_KEY"] not in bot_process.log()
