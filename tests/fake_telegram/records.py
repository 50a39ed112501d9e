"""What the fake records: the calls of the bot, webhook deliveries, stored messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fake_telegram.constants import Json


@dataclass(slots=True)
class Call:
    """One request the bot made; ``error`` is set when the fake answered with an error."""

    method: str
    params: dict[str, Any]
    time: float  # time.monotonic() at arrival
    error: str | None = None  # e.g. "403 Forbidden: bot was blocked by the user"


@dataclass(slots=True)
class Delivery:
    """One POST of an update to a webhook address; ``error`` as getWebhookInfo tells it."""

    update_id: int
    address: str
    error: str | None


@dataclass(slots=True)
class _Stored:
    """A message as Telegram holds it, plus what only tests see (sent bytes, flags)."""

    message: Json
    extras: Json = field(default_factory=dict)
    deleted: bool = False
