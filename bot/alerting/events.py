"""What the alerting layer tells a chat, as plain records, and the renderer that words them.

The wiring hands in a `Renderer` (bot.telegram.alerts implements it); it is called when a
notification is queued, in the chat's language at that moment, so the outbox stores finished
text and its exactly-once delivery is untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from bot.storage.models import Account


@dataclass(frozen=True)
class AlertEvent:
    """An alert of `kind` about `account`, for a chat in `language` and time zone `tz`.
    `amount` is the top-up, or the day's spend for an anomaly; `since` when a "low_over"
    (or "critical_over", when it went under the critical level too) began (a low alert never
    delivered, told above its "recovered")."""

    kind: str
    account: Account
    now: datetime
    tz: str
    language: str
    amount: Decimal | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class Rendered:
    text: str
    reply_markup: str | None = None  # JSON, as the outbox stores it


@dataclass(frozen=True)
class DigestEntry:
    account: Account
    spent: Decimal | None  # in the last 24 hours; None without a reading in them


@dataclass(frozen=True)
class DigestContent:
    entries: Sequence[DigestEntry]
    now: datetime
    tz: str
    language: str


class Renderer(Protocol):
    def alert(self, event: AlertEvent, *, buttons: bool = False) -> Rendered:
        """The alert's text, and its snooze / check-now buttons when `buttons`."""
        ...

    def digest(self, content: DigestContent) -> list[str]:
        """The digest's messages, in order."""
        ...
