"""`python -m bot health`, the container's health check: one line and an exit code for each
answer /healthz may give, or not give, from a loopback server."""

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bot.__main__ import main
from bot.observability import ObservabilitySettings
from bot.ops.probe import healthz_url
from tests.e2e_helpers import free_port


class Answers(BaseHTTPRequestHandler):
    """Answers every GET with the server's `answer`: (status, content type, body)."""

    def do_GET(self) -> None:  # http.server's name for it
        self.server.asked.append(self.path)
        status, kind, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args) -> None:  # quiet
        pass


@pytest.fixture
def server(monkeypatch):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answers)
    httpd.asked, httpd.answer = [], (200, "application/json", '{"status": "ok"}')
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTP_PORT", str(httpd.server_address[1]))
    monkeypatch.setenv("HTTP_HOST", "0.0.0.0")  # as in the image: asked on loopback
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def health(capsys) -> tuple[int, str, str]:
    code = main(["health"])
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy(server, capsys):
    assert health(capsys) == (0, "healthy\n", "")
    assert server.asked == ["/healthz"]


def test_asked_directly_whatever_proxy_is_set(server, monkeypatch, capsys):
    # Docker hands containers the proxy of its daemon's settings: none reaches their loopback.
    nowhere = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, nowhere)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # urlopen() keeps the opener of its first call, with the proxies of the environment then.
    monkeypatch.setattr(urllib.request, "_opener", None)
    assert health(capsys) == (0, "healthy\n", "")
    assert server.asked == ["/healthz"]


def test_unhealthy_names_the_problems(server, capsys):
    problems = ["telegram: no answer to getUpdates for 135 s", "outbox: stuck"]
    body = json.dumps({"status": "unhealthy", "problems": problems})
    server.answer = 503, "application/json", body
    code, out, err = health(capsys)
    assert code == 1
    assert out == "unhealthy: telegram: no answer to getUpdates for 135 s; outbox: stuck\n"
    assert err == ""


@pytest.mark.parametrize(
    "answer",
    [
        (404, "text/html", "<html><body>Not Found</body></html>"),
        (200, "text/html", "<html>a proxy's page</html>"),
        (503, "application/json", '["not", "the", "bot"]'),
    ],
)
def test_something_else_on_the_port_is_a_failure(server, capsys, answer):
    server.answer = answer
    code, out, err = health(capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: http://127.0.0.1:") and "not the bot's health" in err
    assert len(err.splitlines()) == 1


def test_nothing_listening(monkeypatch, capsys):
    port = free_port()
    monkeypatch.setenv("HTTP_PORT", str(port))
    code, out, err = health(capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"error: no answer from http://127.0.0.1:{port}/healthz: ")
    assert "refused" in err.lower() and len(err.splitlines()) == 1


def test_no_http_port(monkeypatch, capsys):
    monkeypatch.delenv("HTTP_PORT", raising=False)
    assert health(capsys) == (1, "", "error: HTTP_PORT is not set, so the bot serves no /healthz\n")


def test_bad_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HTTP_PORT", "http")
    code, out, err = health(capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: HTTP_PORT is invalid") and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080/healthz"),
        ("0.0.0.0", "http://127.0.0.1:8080/healthz"),
        ("::", "http://[::1]:8080/healthz"),
        ("10.0.0.5", "http://10.0.0.5:8080/healthz"),
        ("fd00::5", "http://[fd00::5]:8080/healthz"),
    ],
)
def test_asks_where_the_bot_listens(host, url):
    assert healthz_url(ObservabilitySettings(http_port=8080, http_host=host)) == url
