"""Settings, read from the environment and `.env` (names as documented in the README)."""

from __future__ import annotations

import logging
import re
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from dotenv.parser import parse_stream
from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BeforeValidator,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bot import logs, proxy
from bot.jsonlog import JsonLogFormatter
from bot.observability import ObservabilitySettings, blank_is_unset

DEFAULT_DATA_DIR = Path("data")
BOT_TOKEN_SHAPE = re.compile(r"\d+:[\w-]+")
SQLITE_PREFIX = "sqlite+aiosqlite:///"
# Telegram's rule for the secret token of setWebhook.
WEBHOOK_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Paths of the bot's own HTTP server (bot.web) that a webhook must not take.
SERVED_PATHS = ("/healthz", "/metrics")
REDIS_SCHEMES = ("redis", "rediss", "unix")
# The longest check interval: /interval's too. Longer ones failed every /add (a due time past
# the year 9999, or an integer SQLite cannot store).
MAX_INTERVAL_SECONDS = 7 * 24 * 3600
NEW_KEY_COMMAND = (
    "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


class BaseBotSettings(BaseSettings):
    """Read from the environment and `.env`, with values forgiven stray blanks and quotes:
    `BOT_TOKEN = " 123:abc" ` in a Compose env_file (which keeps quotes) means 123:abc."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    @field_validator("*", mode="before")
    @classmethod
    def _unquote(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1].strip()
        return value


# How a URL's password holds the characters that would end it early (refused URLs say so).
_ENCODED = "in a password, write @ : / # ? % as %40 %3A %2F %23 %3F %25"


class DatabaseSettings(BaseBotSettings):
    """What migrating needs: no bot token (Alembic's command line reads this alone)."""

    database_url: str = f"{SQLITE_PREFIX}{DEFAULT_DATA_DIR}/bot.db"

    @field_validator("database_url")
    @classmethod
    def _usable_database(cls, value: str) -> str:
        try:
            parsed = make_url(value)
            dialect = parsed.get_dialect()
        except NoSuchModuleError:
            raise ValueError(
                f"unknown database kind; use {SQLITE_PREFIX}... or postgresql+asyncpg://..."
            ) from None
        # After its subclass NoSuchModuleError; a ValueError (a port that is not a number, as
        # a password with an unencoded "/" or "#" makes it) quotes the URL's text: not passed on.
        except (ArgumentError, ValueError):
            raise ValueError(
                f"not a database URL; e.g. {SQLITE_PREFIX}data/bot.db ({_ENCODED})"
            ) from None
        # A password with an unencoded "@" ends early: the rest of it is taken for the host or
        # the database, which every message naming the database would print.
        if parsed.password is not None and "@" in f"{parsed.host}{parsed.database}":
            raise ValueError(f"not a database URL: its password ends early ({_ENCODED})")
        if not dialect.is_async:
            raise ValueError(f"needs an asyncio driver, e.g. {SQLITE_PREFIX}... (not sqlite:///)")
        try:
            dialect.import_dbapi()
        except ImportError as error:
            raise ValueError(
                f"its driver is not installed (pip install {error.name or 'the driver'})"
            ) from None
        return value

    @property
    def data_dir(self) -> Path:
        """Folder for a generated key: beside the SQLite file, else ./data."""
        if self.database_url.startswith(SQLITE_PREFIX):
            return Path(self.database_url.removeprefix(SQLITE_PREFIX)).parent
        return DEFAULT_DATA_DIR


def _usable_proxy(value: SecretStr | None) -> SecretStr | None:
    if value is not None and (why := proxy.refusal(value.get_secret_value(), _ENCODED)):
        raise ValueError(why)
    return value


# TELEGRAM_PROXY and SMSC_PROXY: blank is unset, and any URL the proxy library would refuse
# at the first request is refused at start.
ProxyUrl = Annotated[
    SecretStr | None, BeforeValidator(blank_is_unset), AfterValidator(_usable_proxy)
]


class SmscSettings(BaseBotSettings):
    """What talking to SMSC needs: `python -m bot check` reads this alone."""

    smsc_base_url: AnyHttpUrl = AnyHttpUrl("https://smsc.ru")
    # Where SMSC is reachable only through a proxy (as TELEGRAM_PROXY).
    smsc_proxy: ProxyUrl = None

    @property
    def smsc_proxy_url(self) -> str | None:
        return None if self.smsc_proxy is None else self.smsc_proxy.get_secret_value()

    @field_validator("smsc_base_url")
    @classmethod
    def _site(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        # What bot.smsc.sites takes as a site, checked here where it is one line at start: the
        # site is stored with each account and shown in chats, so it holds no password, and
        # SMSC is asked with each account's own login.
        if value.username or value.password:
            raise ValueError(
                "no user:password@ in it (each account's own login is sent); a proxy that "
                "wants one goes in SMSC_PROXY"
            )
        if value.query or value.fragment:
            raise ValueError("a base URL without ? or #, e.g. https://smsc.ru")
        return value

    def secrets(self) -> list[str]:
        """Every secret among the settings, for masking in logs (bot.logs)."""
        return [] if self.smsc_proxy_url is None else logs.url_secrets(self.smsc_proxy_url)


class FleetSettings(BaseBotSettings):
    """What the replicas share, and `python -m bot check` counts its requests with: the key
    (every replica reads the passwords the others stored, and names the shared limits with
    it) and Redis."""

    # A Fernet key; when unset, one is generated into the data folder on first start.
    secret_key: SecretStr | None = None
    # Shared FSM, event isolation and SMSC limits of several replicas (the `redis` extra).
    redis_url: SecretStr | None = None

    _fleet_blanks = field_validator("redis_url", mode="before")(staticmethod(blank_is_unset))

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # The port checked here: redis-py's error would quote the URL's text. urlsplit's and the
        # port's errors do too (a full-width @ in the password, a port not a number).
        try:
            url = urlsplit(value.get_secret_value())
            scheme, _port = url.scheme, url.port
        except ValueError:
            scheme = None
        if scheme not in REDIS_SCHEMES:
            raise ValueError(
                f"not a Redis URL; e.g. redis://redis:6379/0 (or rediss://, unix://; {_ENCODED})"
            )
        if find_spec("redis") is None:
            raise ValueError(
                "the redis package is not installed (pip install 'smsc-balance-bot[redis]')"
            )
        return value

    @field_validator("secret_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # blank is unset
        try:
            Fernet(value.get_secret_value())
        except ValueError:
            raise ValueError(
                f"not a Fernet key; leave it unset, or make one with {NEW_KEY_COMMAND}"
            ) from None
        return value

    def secrets(self) -> list[str]:
        """The key, and Redis' password (for masking in logs, bot.logs)."""
        found = [] if self.secret_key is None else [self.secret_key.get_secret_value()]
        if self.redis_url is not None:
            found += logs.url_secrets(self.redis_url.get_secret_value())
        return found


class Settings(DatabaseSettings, SmscSettings, FleetSettings, ObservabilitySettings):
    bot_token: SecretStr
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    # Where Telegram is reachable only through a proxy: http://, socks5:// or socks4://, with
    # user:password@ if it wants them. Host names are resolved by the proxy.
    telegram_proxy: ProxyUrl = None
    check_interval_seconds: Annotated[int, Field(ge=1, le=MAX_INTERVAL_SECONDS)] = 900
    # Scheduled checks are answered from the cache too (bot.smsc.guard): a balance at most this
    # old, so a drop is alerted on within this much of a check, never later.
    balance_cache_seconds: Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)] = 30
    # SMSC refuses an 11th balance request within a minute, so 10 is a hard ceiling.
    smsc_max_requests_per_minute: Annotated[int, Field(ge=1, le=10)] = 10
    # Balance history: every sample for this many days, one a day before that. At most a
    # century: the nightly thinning's cutoff must be a date.
    history_raw_days: Annotated[int, Field(ge=1, le=36500)] = 90
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # Webhook mode instead of long polling (README, "Running several replicas"): Telegram
    # POSTs updates to this public https URL; the bot serves its path on HTTP_PORT.
    webhook_url: HttpUrl | None = None
    webhook_secret: SecretStr | None = None
    # How long a replica's claim on a check or a notification holds if it dies meanwhile.
    lease_seconds: Annotated[int, Field(ge=5, le=600)] = 60

    _bot_blanks = field_validator("webhook_url", "webhook_secret", mode="before")(
        staticmethod(blank_is_unset)
    )

    @field_validator("webhook_url")
    @classmethod
    def _public_https(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is None:
            return None
        if value.scheme != "https":
            raise ValueError("Telegram calls https URLs only; e.g. https://bot.example.com/tg/hook")
        if (value.path or "/") in SERVED_PATHS:
            raise ValueError(f"its path must not be one of {', '.join(SERVED_PATHS)}")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not WEBHOOK_SECRET_SHAPE.fullmatch(value.get_secret_value()):
            raise ValueError("1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @model_validator(mode="after")
    def _together(self) -> Self:
        # Rules across settings: the message names the setting to change, as a field's does.
        if self.webhook_url is not None and self.webhook_secret is None:
            raise ValueError(
                "WEBHOOK_SECRET is required with WEBHOOK_URL: 1 to 256 characters of A-Z, "
                "a-z, 0-9, _ and -, e.g. python -c 'import secrets; print(secrets.token_urlsafe())'"
            )
        if self.webhook_url is not None and self.http_port is None:
            raise ValueError("HTTP_PORT is required with WEBHOOK_URL: the webhook is served on it")
        if self.redis_url is not None and not self.database_url.startswith("postgresql"):
            raise ValueError(
                "DATABASE_URL must be PostgreSQL (postgresql+asyncpg://...) with REDIS_URL: "
                "several replicas cannot share a SQLite file"
            )
        if self.redis_url is not None and self.secret_key is None:
            raise ValueError(
                "SECRET_KEY is required with REDIS_URL: every replica must read the passwords "
                "the others stored, so all need the same key (a generated one is per machine)"
            )
        if self.redis_url is not None and self.webhook_url is None:
            raise ValueError(
                "WEBHOOK_URL is required with REDIS_URL: Telegram lets one process poll for "
                "updates, and replicas polling took each other's (409 Conflict, for ever)"
            )
        return self

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not BOT_TOKEN_SHAPE.fullmatch(value.get_secret_value()):
            raise ValueError("not a bot token; copy all of what @BotFather gave (123456:ABC...)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    def secrets(self) -> list[str]:
        """Every secret among the settings, for masking in logs (bot.logs)."""
        found = [
            *super().secrets(),
            *FleetSettings.secrets(self),
            self.bot_token.get_secret_value(),
        ]
        if self.webhook_secret is not None:
            found.append(self.webhook_secret.get_secret_value())
        # Passwords in URLs: the database's (its driver's errors may quote it), Redis', the
        # proxy's, and those of a Bot API server, a heartbeat or a webhook behind something
        # that wants one.
        urls = [self.database_url, str(self.telegram_api_url), self.telegram_proxy_url]
        urls += [str(url) for url in (self.heartbeat_url, self.webhook_url) if url is not None]
        for url in urls:
            found += [] if url is None else logs.url_secrets(url)
        # The database's as its driver gets it: urlsplit (above) cuts a password with an
        # unencoded / or ? short, and refuses one with a full-width @, that SQLAlchemy reads.
        found += [make_url(self.database_url).password or ""]
        return [secret for secret in found if secret]

    @property
    def telegram_proxy_url(self) -> str | None:
        return None if self.telegram_proxy is None else self.telegram_proxy.get_secret_value()


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it (never its value)."""


def load_settings(cls: type[SettingsT] = Settings) -> SettingsT:  # type: ignore[assignment]
    """Settings of `cls`, or SettingsError naming the first bad one."""
    try:
        _readable_dotenv(cls)
        return cls()
    except UnicodeDecodeError as exc:  # the only text pydantic-settings decodes is .env
        raise SettingsError(
            f".env is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at {exc.start}); "
            "save it as UTF-8"
        ) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings (Settings._together) names its own
            raise SettingsError(message) from None
        name = str(error["loc"][0]).upper()
        reason = "is required" if error["type"] == "missing" else f"is invalid: {message}"
        raise SettingsError(f"{name} {reason}") from None


def _readable_dotenv(cls: type[BaseSettings]) -> None:
    """SettingsError for the first line of .env that python-dotenv cannot read. It only warns
    (twice, unformatted) and drops the setting, and with an unclosed quote every setting up to
    the next quote. The line is named by its number alone: it may hold a secret."""
    config = cls.model_config
    env_file = config.get("env_file")
    if not isinstance(env_file, str) or not Path(env_file).is_file():  # ours is ".env"
        return
    with Path(env_file).open(encoding=config.get("env_file_encoding")) as stream:
        for binding in parse_stream(stream):
            if binding.error:
                quoted = any(quote in binding.original.string for quote in "\"'")
                hint = " (an unclosed quote?)" if quoted else ""
                raise SettingsError(f"{env_file} line {binding.original.line} cannot be read{hint}")


# Libraries whose debug output is noise, or carries request URLs and SQL parameters.
QUIET_LOGGERS = ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "apscheduler")


def configure_logging(level: str, log_format: str = "text") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonLogFormatter())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # aiogram's line for every update handled ("Update id=... is handled. Duration ...")
    # costs a burst of commands as much as a query each: debug output here.
    if logging.getLevelName(level) > logging.DEBUG:
        logging.getLogger("aiogram.event").setLevel(logging.WARNING)
