"""The observability settings: defaults that keep everything off, and one line per bad value."""

import pytest

from bot.config import Settings, SettingsError, load_settings


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
