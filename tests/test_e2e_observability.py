"""The real bot process watched the way an ops team would: /healthz, /metrics, a push monitor,
JSON logs and /status, against the loopback fakes, with thresholds of seconds."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.loopback import LoopbackServer
from tests.test_e2e_alerts import texts
from tests.test_e2e_private import say

USER, STRANGER = 901, 902


class PushMonitor(LoopbackServer):
    """Uptime Kuma's push endpoint, counting the beats."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._beats = 0

    @property
    def beats(self) -> int:
        with self._lock:
            return self._beats

    def _app(self) -> web.Application:
        async def push(_request: web.Request) -> web.Response:
            with self._lock:
                self._beats += 1
            return web.json_response({"ok": True})

        app = web.Application()
        app.router.add_get("/api/push/{token}", push)
        return app


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)
    return value


def health_becomes(base: str, status: int) -> dict:
    """The body of /healthz once it answers `status`."""
    _status, body = wait_until(lambda: (reply := get(f"{base}/healthz"))[0] == status and reply)
    return json.loads(body)


def metric(base: str, name: str, **labels: str) -> float | None:
    """A sample of /metrics, read with prometheus_client's own parser."""
    _status, body = get(f"{base}/metrics")
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return sample.value
    return None


def balance_of(base: str, account: str, site: str) -> float | None:
    labels = {"account": account, "login": account, "site": site, "chat_id": str(USER)}
    return metric(base, "smsc_bot_account_balance", **labels)


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
    wait_until(lambda: monitor.beats >= 3)

    # The Bot API stops answering polls for a while.
    telegram.fail("getUpdates", status=502, times=3)
    telegram.message(USER, "/start")  # ends the long poll under way
    assert any("telegram" in problem for problem in health_becomes(base, 503)["problems"])
    beats = monitor.beats
    time.sleep(1)
    assert get(f"{base}/healthz")[0] == 503
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
