"""Settings, read from the environment and `.env` (names as documented in the README)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Annotated, Literal, TypeVar

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.observability import ObservabilitySettings

DEFAULT_DATA_DIR = Path("data")
BOT_TOKEN_SHAPE = re.compile(r"\d+:[\w-]+")


class DatabaseSettings(BaseSettings):
    """What migrating needs: no bot token (Alembic's command line reads this alone)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    database_url: str = f"sqlite+aiosqlite:///{DEFAULT_DATA_DIR}/bot.db"


class SmscSettings(BaseSettings):
    """What talking to SMSC needs: `python -m bot check` reads this alone."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    smsc_base_url: AnyHttpUrl = AnyHttpUrl("https://smsc.ru")


class Settings(DatabaseSettings, SmscSettings, ObservabilitySettings):
    bot_token: SecretStr
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    # A Fernet key; when unset, one is generated into the data folder on first start.
    secret_key: SecretStr | None = None
    check_interval_seconds: Annotated[int, Field(ge=1)] = 900
    balance_cache_seconds: Annotated[float, Field(ge=0)] = 30
    # SMSC refuses an 11th balance request within a minute, so 10 is a hard ceiling.
    smsc_max_requests_per_minute: Annotated[int, Field(ge=1, le=10)] = 10
    # Balance history: every sample for this many days, one a day before that.
    history_raw_days: Annotated[int, Field(ge=1)] = 90
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not BOT_TOKEN_SHAPE.fullmatch(value.get_secret_value()):
            raise ValueError("not a bot token (123456:ABC...)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("secret_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @property
    def data_dir(self) -> Path:
        """Folder for a generated key: beside the SQLite file, else ./data."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            return Path(self.database_url.removeprefix(prefix)).parent
        return DEFAULT_DATA_DIR


SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it (never its value)."""


def load_settings(cls: type[SettingsT] = Settings) -> SettingsT:  # type: ignore[assignment]
    """Settings of `cls`, or SettingsError naming the first bad one."""
    try:
        return cls()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        message = error["msg"].removeprefix("Value error, ")
        reason = "is required" if error["type"] == "missing" else f"is invalid: {message}"
        raise SettingsError(f"{name} {reason}") from None


# Libraries whose debug output is noise, or carries request URLs and SQL parameters.
QUIET_LOGGERS = ("httpx", "httpcore", "aiosqlite", "sqlalchemy.engine", "apscheduler")


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
