"""Settings of what watches the bot itself: the HTTP server (/healthz, /metrics), the
heartbeat, the health thresholds, the log format and the operators allowed /status.

A base of `bot.config.Settings`, so they are read, and refused, with the others."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Finite: "inf" reads as a float, and a heartbeat every inf seconds, or a threshold of inf, is
# one never sent or never crossed.
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


def blank_is_unset(value: object) -> object:
    """An optional setting left blank (`HTTP_PORT=`, as .env.example has them) is unset. Each
    settings class registers it for its own fields, under a name of its own: one the same as a
    base's validator would replace it."""
    if isinstance(value, str) and not value.strip().strip("\"'").strip():
        return None  # quotes too: a Compose env_file keeps them (`SMSC_PROXY=""`)
    return value


LOOPBACK = "127.0.0.1"


class ObservabilitySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    # The HTTP server is off unless a port is set; it listens on loopback unless told otherwise
    # (in a container: HTTP_HOST=0.0.0.0 and publish the port only where Prometheus runs).
    http_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    http_host: str = LOOPBACK
    # A push monitor (Uptime Kuma, healthchecks.io) requested every HEARTBEAT_SECONDS while
    # healthy: the team is paged by a third party when the bot dies, hangs or loses its network.
    heartbeat_url: AnyHttpUrl | None = None
    heartbeat_seconds: Seconds = 60
    # Unhealthy when the Bot API has not answered a poll for this long (on top of the
    # long-poll timeout of a poll under way).
    health_telegram_seconds: Seconds = 120
    # ... when the scheduler has not looked for due accounts for this long,
    health_scheduler_seconds: Seconds = 60
    # ... when accounts are due and no check completed within this many shortest intervals,
    health_checks_factor: Annotated[float, Field(ge=1, allow_inf_nan=False)] = 2
    # ... when the oldest undelivered notification is older than this.
    health_outbox_seconds: Seconds = 300
    log_format: Literal["text", "json"] = "text"
    # Telegram user ids that may send /status in a private chat: "123, 456".
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()

    _observer_blanks = field_validator("http_port", "heartbeat_url", mode="before")(
        staticmethod(blank_is_unset)
    )

    @field_validator("http_host", mode="before")
    @classmethod
    def _loopback_when_blank(cls, value: object) -> object:
        # Blank as the other optional settings: unset, not every interface (aiohttp's reading
        # of ""), where /metrics would show logins, chat ids and balances to the network.
        return LOOPBACK if blank_is_unset(value) is None else value

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _id_list(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        ids = value.replace(";", ",").replace(" ", ",").split(",")
        try:
            return frozenset(int(part) for part in ids if part)
        except ValueError:
            raise ValueError("Telegram user ids separated by commas, e.g. 123456,789012") from None
