import re
from pathlib import Path

import pytest

from bot.config import Settings, SettingsError, load_settings

TOKEN = "123456:TEST-token"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)


def test_defaults(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    settings = load_settings()
    assert str(settings.telegram_api_url) == "https://api.telegram.org/"
    assert str(settings.smsc_base_url) == "https://smsc.ru/"
    assert settings.check_interval_seconds == 900
    assert settings.balance_cache_seconds == 30
    assert settings.smsc_max_requests_per_minute == 10
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOT_TOKEN", None, "BOT_TOKEN is required"),
        ("BOT_TOKEN", "nonsense", "BOT_TOKEN is invalid"),
        ("SMSC_MAX_REQUESTS_PER_MINUTE", "11", "SMSC_MAX_REQUESTS_PER_MINUTE is invalid"),
        ("CHECK_INTERVAL_SECONDS", "0", "CHECK_INTERVAL_SECONDS is invalid"),
        ("TELEGRAM_API_URL", "not a url", "TELEGRAM_API_URL is invalid"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL is invalid"),
    ],
)
def test_bad_setting_names_itself(monkeypatch, name, value, message):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)
    if value:
        assert value not in str(caught.value).removeprefix(name)


def test_short_interval_accepted_for_demos(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("CHECK_INTERVAL_SECONDS", "1")
    assert load_settings().check_interval_seconds == 1


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nLOG_LEVEL=debug\n")
    assert load_settings().log_level == "DEBUG"


def test_env_example_names_every_setting_and_loads(tmp_path):
    """.env.example is what users copy: every setting is in it (optional ones commented out),
    nothing else is, and the copy loads as it is."""
    example = (Path(__file__).parent.parent / ".env.example").read_text()
    named = {
        line.lstrip("# ").split("=", 1)[0]
        for line in example.splitlines()
        if re.match(r"#? ?[A-Z_]+=", line)
    }
    assert named == {name.upper() for name in Settings.model_fields}
    (tmp_path / ".env").write_text(example)
    settings = load_settings()
    assert settings.http_port is None and settings.log_format == "text"
