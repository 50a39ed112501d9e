"""The observability settings: defaults that keep everything off, and one line per bad value."""

import socket
from types import SimpleNamespace

import pytest

from bot.config import Settings, SettingsError, load_settings
from bot.web import watched


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("BOT_TOKEN", "123456:TEST-token")


def test_off_by_default_and_lists_read(monkeypatch):
    settings = load_settings()
    assert settings.http_port is None and settings.heartbeat_url is None
    assert settings.http_host == "127.0.0.1" and settings.log_format == "text"
    assert settings.admin_ids == frozenset()
    monkeypatch.setenv("ADMIN_IDS", "123, 456")
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    monkeypatch.setenv("HTTP_PORT", "")
    settings = load_settings()
    assert settings.admin_ids == {123, 456} and settings.log_format == "json"
    assert settings.http_port is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PORT", "70000"),
        ("HEARTBEAT_URL", "not a url"),
        ("HEARTBEAT_SECONDS", "0"),
        # No heartbeat ever, and no threshold ever crossed.
        ("HEARTBEAT_SECONDS", "inf"),
        ("HEALTH_TELEGRAM_SECONDS", "inf"),
        ("HEALTH_CHECKS_FACTOR", "inf"),
        ("HEALTH_OUTBOX_SECONDS", "-1"),
        ("HEALTH_CHECKS_FACTOR", "0.5"),
        ("LOG_FORMAT", "xml"),
        ("ADMIN_IDS", "@ann"),
    ],
)
def test_bad_value_is_one_line_naming_it(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    message = str(error.value)
    assert message.startswith(f"{name} is invalid") and "\n" not in message


@pytest.mark.parametrize("blank", ["", " ", '""'])
def test_a_blank_http_host_is_loopback(monkeypatch, blank):
    """Left blank as the other optional settings: /metrics on every interface showed logins,
    chat ids and balances to the network."""
    monkeypatch.setenv("HTTP_PORT", "8080")
    monkeypatch.setenv("HTTP_HOST", blank)
    assert load_settings().http_host == "127.0.0.1"


@pytest.mark.parametrize("wrong", ["HTTP_HOST", "HTTP_PORT"])
async def test_address_the_server_cannot_listen_on_names_the_wrong_setting(monkeypatch, wrong):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # 192.0.2.1 is a documentation address: no machine of ours has it.
        monkeypatch.setenv("HTTP_HOST", "192.0.2.1" if wrong == "HTTP_HOST" else "127.0.0.1")
        monkeypatch.setenv("HTTP_PORT", str(port))
        unused = SimpleNamespace()
        with pytest.raises(SettingsError, match=f"^{wrong} is invalid: cannot listen on "):
            async with watched(load_settings(), unused, unused, unused):
                pass
