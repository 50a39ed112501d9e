import logging
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.config import (
    MAX_INTERVAL_SECONDS,
    QUIET_LOGGERS,
    Settings,
    SettingsError,
    SmscSettings,
    configure_logging,
    load_settings,
)

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
    assert settings.webhook_url is None and settings.redis_url is None
    assert settings.lease_seconds == 60


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOT_TOKEN", None, "BOT_TOKEN is required"),
        ("BOT_TOKEN", "nonsense", "BOT_TOKEN is invalid"),
        ("SMSC_MAX_REQUESTS_PER_MINUTE", "11", "SMSC_MAX_REQUESTS_PER_MINUTE is invalid"),
        ("CHECK_INTERVAL_SECONDS", "0", "CHECK_INTERVAL_SECONDS is invalid"),
        # Longer than /interval allows: every /add failed (a due time past year 9999, or an
        # integer SQLite cannot store).
        ("CHECK_INTERVAL_SECONDS", "604801", "CHECK_INTERVAL_SECONDS is invalid"),
        ("CHECK_INTERVAL_SECONDS", "99999999999999999999999", "CHECK_INTERVAL_SECONDS is inva"),
        # Scheduled checks are answered from the cache too: a long one, no alert ever.
        ("BALANCE_CACHE_SECONDS", "inf", "BALANCE_CACHE_SECONDS is invalid"),
        ("BALANCE_CACHE_SECONDS", "301", "BALANCE_CACHE_SECONDS is invalid"),
        # The nightly thinning failed on a cutoff before year 1, and history was never thinned.
        ("HISTORY_RAW_DAYS", "1000000", "HISTORY_RAW_DAYS is invalid"),
        ("TELEGRAM_API_URL", "not a url", "TELEGRAM_API_URL is invalid"),
        ("LOG_LEVEL", "chatty", "LOG_LEVEL is invalid"),
        ("WEBHOOK_URL", "http://bot.example.com/hook", "WEBHOOK_URL is invalid: Telegram calls"),
        ("WEBHOOK_URL", "https://bot.example.com/healthz", "WEBHOOK_URL is invalid: its path"),
        ("WEBHOOK_SECRET", "with spaces!", "WEBHOOK_SECRET is invalid: 1 to 256 characters"),
        ("WEBHOOK_SECRET", "x" * 257, "WEBHOOK_SECRET is invalid: 1 to 256 characters"),
        ("REDIS_URL", "http://redis:6379", "REDIS_URL is invalid: not a Redis URL"),
        ("LEASE_SECONDS", "4", "LEASE_SECONDS is invalid"),
        ("LEASE_SECONDS", "601", "LEASE_SECONDS is invalid"),
        ("TELEGRAM_PROXY", "https://proxy:3128", "TELEGRAM_PROXY is invalid: not a proxy URL"),
        ("TELEGRAM_PROXY", "socks5://proxy", "TELEGRAM_PROXY is invalid: not a proxy URL"),
        ("TELEGRAM_PROXY", "http://proxy:0", "TELEGRAM_PROXY is invalid: not a proxy URL"),
        # An unencoded "#" in the password: the rest of it would be taken for a fragment.
        ("TELEGRAM_PROXY", "socks5://ops:1080#pa55@proxy:1080", "TELEGRAM_PROXY is invalid: not"),
        ("TELEGRAM_PROXY", "http://ops@proxy:3128", "TELEGRAM_PROXY is invalid: give the proxy"),
        ("TELEGRAM_PROXY", "http://a%3Ab:pa55@proxy:3128", "TELEGRAM_PROXY is invalid: the proxy"),
        ("TELEGRAM_PROXY", "socks5://ops:%D0%BF%D0%B0@proxy:1080", "TELEGRAM_PROXY is invalid"),
        ("TELEGRAM_PROXY", f"socks5://ops:{'p' * 256}@proxy:1080", "TELEGRAM_PROXY is invalid"),
        ("SMSC_PROXY", "ftp://proxy:21", "SMSC_PROXY is invalid: not a proxy URL"),
        # Every /add and `check` failed on it with a traceback (no site holds a password).
        ("SMSC_BASE_URL", "https://ops:smsc-pa55@smsc.example", "SMSC_BASE_URL is invalid: no us"),
        ("SMSC_BASE_URL", "https://smsc.example/?a=1", "SMSC_BASE_URL is invalid: a base URL"),
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


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgresql+asyncpg://bot:Pa55word/bot"),  # the password read as a port
        ("DATABASE_URL", "postgresql+asyncpg://bot:p@ss:Pa55word@db/bot"),  # "@" not encoded
        ("DATABASE_URL", "postgresql+asyncpg://bot:p@Pa55/w#rd@/bot?host=/run/pg"),  # the same
        ("REDIS_URL", "redis://:Pa55#word@redis:6379/0"),  # "#" not encoded: a fragment
        ("REDIS_URL", "redis://:Pa55/word@redis:6379/0"),
        ("TELEGRAM_PROXY", "socks5://ops:Pa55#word@proxy:1080"),
        # A full-width @ (/, ?): urlsplit's error quotes the URL's user:password@host.
        ("REDIS_URL", "redis://:Pa55＠word@redis:6379/0"),
        ("TELEGRAM_PROXY", "socks5://ops:Pa55＠word@proxy:1080"),
        ("SMSC_PROXY", "http://ops:Pa55／word@proxy:3128"),
    ],
)
def test_a_malformed_url_is_refused_without_its_password(monkeypatch, name, value):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name} is invalid: not a ") as caught:
        load_settings()
    assert "Pa55" not in str(caught.value) and "%23" in str(caught.value)


@pytest.mark.parametrize("blank", ["", " ", '""', "''"])
def test_a_proxy_left_blank_or_empty_quotes_is_none(monkeypatch, blank):
    """As a Compose env_file gives `SMSC_PROXY=""`: the quotes kept."""
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SMSC_PROXY", blank)
    monkeypatch.setenv("TELEGRAM_PROXY", blank)
    settings = load_settings()
    assert settings.smsc_proxy is None and settings.telegram_proxy is None


def test_short_interval_accepted_for_demos(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("CHECK_INTERVAL_SECONDS", "1")
    assert load_settings().check_interval_seconds == 1


def test_the_longest_settings_still_load(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("CHECK_INTERVAL_SECONDS", str(MAX_INTERVAL_SECONDS))
    monkeypatch.setenv("BALANCE_CACHE_SECONDS", "300")
    monkeypatch.setenv("HISTORY_RAW_DAYS", "36500")
    settings = load_settings()
    assert settings.check_interval_seconds == MAX_INTERVAL_SECONDS == 7 * 24 * 3600
    assert (settings.balance_cache_seconds, settings.history_raw_days) == (300, 36500)


def test_dotenv_file_is_read(tmp_path):
    (tmp_path / ".env").write_text(f"BOT_TOKEN={TOKEN}\nLOG_LEVEL=debug\n")
    assert load_settings().log_level == "DEBUG"


def test_a_dotenv_file_not_in_utf8_is_one_line(tmp_path):
    # Russian comments saved in Windows-1251.
    (tmp_path / ".env").write_bytes(f"BOT_TOKEN={TOKEN}\n# Токен\n".encode("cp1251"))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == ".env is not UTF-8 text (byte 0xd2 at 30); save it as UTF-8"


@pytest.mark.parametrize(
    ("line", "why"),
    [
        # The settings after it, up to the next quote, were swallowed.
        ('ADMIN_IDS="123456', " (an unclosed quote?)"),
        ("SECRET_KEY='s3cret-key", " (an unclosed quote?)"),
        ("SMSC PROXY=http://proxy:3128", ""),
    ],
)
def test_a_dotenv_line_that_cannot_be_read_is_one_line_naming_it(tmp_path, caplog, line, why):
    (tmp_path / ".env").write_text(
        f'BOT_TOKEN={TOKEN}\n{line}\nHTTP_PORT=18099\nLOG_LEVEL=DEBUG\nWEBHOOK_SECRET="abc"\n'
    )
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f".env line 2 cannot be read{why}"
    # python-dotenv's own warning, unformatted and twice, is not printed.
    assert not caplog.records


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


POSTGRES = "postgresql+asyncpg://bot:pw@db/bot"
WEBHOOK = {"WEBHOOK_URL": "https://bot.example.com/tg/hook", "WEBHOOK_SECRET": "s3cret-token_1"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"WEBHOOK_URL": "https://bot.example.com/tg/hook", "HTTP_PORT": "8080"},
            "WEBHOOK_SECRET is required with WEBHOOK_URL: 1 to 256 characters",
        ),
        (WEBHOOK, "HTTP_PORT is required with WEBHOOK_URL"),
        (
            {"REDIS_URL": "redis://redis:6379/0"},
            "DATABASE_URL must be PostgreSQL (postgresql+asyncpg://...) with REDIS_URL",
        ),
        (
            {"REDIS_URL": "redis://redis:6379/0", "DATABASE_URL": POSTGRES},
            "SECRET_KEY is required with REDIS_URL: every replica must read the passwords",
        ),
        (
            {
                "REDIS_URL": "redis://redis:6379/0",
                "DATABASE_URL": POSTGRES,
                "SECRET_KEY": Fernet.generate_key().decode(),
            },
            "WEBHOOK_URL is required with REDIS_URL: Telegram lets one process poll",
        ),
    ],
)
def test_settings_that_need_others_say_which(monkeypatch, settings, message):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_webhook_and_redis_settings_and_their_secrets(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("HTTP_PORT", "8080")
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    monkeypatch.setenv("REDIS_URL", "rediss://:redis-pa55@redis:6380/1")
    monkeypatch.setenv("SECRET_KEY", Fernet.generate_key().decode())
    for name, value in WEBHOOK.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.webhook_url is not None and settings.webhook_url.path == "/tg/hook"
    assert {"s3cret-token_1", "redis-pa55", TOKEN} <= set(settings.secrets())
    assert "redis-pa55" not in repr(settings) and "s3cret-token_1" not in repr(settings)
    monkeypatch.setenv("REDIS_URL", "unix:///run/redis.sock?db=0&password=sock-pa55")
    assert "sock-pa55" in load_settings().secrets()


def test_passwords_in_every_url_are_secrets_as_sent_and_as_written(monkeypatch):
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bot:db-p%40ss@db/bot")
    # As README advises: only @ : / # ? % encoded, so the URL holds neither the password sent
    # nor all of it encoded; and a lower-case escape.
    monkeypatch.setenv("TELEGRAM_API_URL", "http://botapi:Qw!rty%402024@botapi:8081")
    monkeypatch.setenv("TELEGRAM_PROXY", "socks5://ops:pr0xy%40pa55@proxy:1080")
    monkeypatch.setenv("SMSC_PROXY", "http://ops:smsc%2fpr0xy@proxy:3128")
    monkeypatch.setenv("HEARTBEAT_URL", "https://kuma:beat-pa55@uptime.example/api/push/k3y")
    monkeypatch.setenv("SECRET_KEY", Fernet.generate_key().decode())
    secrets = set(load_settings().secrets())
    assert {"db-p@ss", "db-p%40ss", "Qw!rty@2024", "Qw!rty%402024"} <= secrets
    assert {"pr0xy@pa55", "pr0xy%40pa55", "smsc/pr0xy", "smsc%2fpr0xy", "beat-pa55"} <= secrets
    # `python -m bot check` reads SMSC's settings alone, and masks theirs.
    assert {"smsc/pr0xy", "smsc%2fpr0xy"} <= set(load_settings(SmscSettings).secrets())
    # asyncpg takes a password as ?password= too.
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://bot@db/bot?password=q-pa55")
    assert "q-pa55" in load_settings().secrets()


def test_redis_url_without_the_redis_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr("bot.config.sections.find_spec", lambda name: None)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
    monkeypatch.setenv("DATABASE_URL", POSTGRES)
    monkeypatch.setenv("REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("SECRET_KEY", Fernet.generate_key().decode())
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "REDIS_URL is invalid: the redis package is not installed "
        "(pip install 'smsc-balance-bot[redis]')"
    )


@pytest.mark.parametrize(("level", "per_update"), [("INFO", False), ("DEBUG", True)])
def test_a_line_per_update_only_at_debug(level, per_update):
    events = logging.getLogger("aiogram.event")
    root = logging.getLogger()
    loggers = [root, events, *(logging.getLogger(name) for name in QUIET_LOGGERS)]
    levels = [logger.level for logger in loggers]
    try:
        root.setLevel(level)  # basicConfig leaves it to pytest, whose handlers are there
        configure_logging(level)
        assert events.isEnabledFor(logging.INFO) is per_update  # "Update id=... is handled"
        assert events.isEnabledFor(logging.ERROR)  # a handler's failure is always told
    finally:
        for logger, saved in zip(loggers, levels, strict=True):
            logger.setLevel(saved)
