"""The settings' sections that commands other than the bot's read alone (migrating, `check`,
copy-data), each with its checks; `bot.config.Settings` is all of them and the bot's own."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from pydantic import AfterValidator, AnyHttpUrl, BeforeValidator, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from bot import logs, proxy
from bot.observability import blank_is_unset

DEFAULT_DATA_DIR = Path("data")
SQLITE_PREFIX = "sqlite+aiosqlite:///"
REDIS_SCHEMES = ("redis", "rediss", "unix")
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

    def secrets(self) -> list[str]:
        """Every secret among the settings, for masking in logs (bot.logs): each section adds
        its own."""
        return []


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
        proxied = [] if self.smsc_proxy_url is None else logs.url_secrets(self.smsc_proxy_url)
        return [*super().secrets(), *proxied]


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
        found = super().secrets()
        if self.secret_key is not None:
            found.append(self.secret_key.get_secret_value())
        if self.redis_url is not None:
            found += logs.url_secrets(self.redis_url.get_secret_value())
        return found
