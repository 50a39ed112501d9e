"""What the end-to-end tests share: talking to the real bot through the fake Bot API (`say`,
`texts`), its HTTP endpoints (`get`, `wait_until`, `health_becomes`, `metric`), Uptime Kuma's
push endpoint (`PushMonitor`) and a free loopback port."""

import json
import socket
import threading
import time
import urllib.error
import urllib.request

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.loopback import LoopbackServer


def say(telegram, chat_id, text, *, expect: int = 1, **kwargs):
    """Send a message as a user; wait for `expect` more bot messages and return the last."""
    before = len(telegram.sent(chat_id))
    message_id = telegram.message(chat_id, text, **kwargs)
    telegram.wait_for(lambda: len(telegram.sent(chat_id)) >= before + expect)
    return message_id, telegram.sent(chat_id)[-1]


def texts(telegram, chat_id, words):
    return [m for m in telegram.sent(chat_id) if words in m.get("text", "")]


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
