"""Settings, read from the environment and `.env` (names as documented in the README): the
bot's whole `Settings`, of the sections other commands read alone (bot.config.sections)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar

from dotenv.parser import parse_stream
from pydantic import (
    AnyHttpUrl,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings
from sqlalchemy.engine import make_url

from bot import logs
from bot.config.sections import (
    DatabaseSettings,
    FleetSettings,
    ProxyUrl,
    SmscSettings,
)
from bot.jsonlog import JsonLogFormatter
from bot.observability import ObservabilitySettings, blank_is_unset

BOT_TOKEN_SHAPE = re.compile(r"\d+:[\w-]+")
# Telegram's rule for the secret token of setWebhook.
WEBHOOK_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Paths of the bot's own HTTP server (bot.web) that a webhook must not take.
SERVED_PATHS = ("/healthz", "/metrics")
# The longest check interval: /interval's too. Longer ones failed every /add (a due time past
# the year 9999, or an integer SQLite cannot store).
MAX_INTERVAL_SECONDS = 7 * 24 * 3600


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
        found = [*super().secrets(), self.bot_token.get_secret_value()]
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
