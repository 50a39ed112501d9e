"""One try at delivering a notification, as the outbox sees it: the `Sender` that makes it
(bot.telegram.sender, through aiogram) and the `Delivery` it answers with, Telegram's answer
reduced to what the outbox does next (bot.alerting.outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from bot.alerting.claims import Outgoing


class Outcome(Enum):
    SENT = "sent"
    RETRY_AFTER = "retry after"  # 429: `retry_after` seconds
    TOKEN_REFUSED = "token refused"  # 401/404: nothing more can be sent
    MIGRATED = "migrated"  # the group is now the supergroup `migrated_to`
    CHAT_GONE = "chat gone"  # 403: blocked or removed
    THREAD_GONE = "thread gone"  # the forum topic was deleted or closed
    REFUSED = "refused"  # 400: this message will never go
    FAILED = "failed"  # 5xx, network, codes no one expects: try again later


@dataclass(frozen=True)
class Delivery:
    outcome: Outcome
    message_id: int | None = None
    retry_after: float = 0.0
    migrated_to: int | None = None
    error: str = ""  # what to log: the Bot API's description, never a secret


class Sender(Protocol):
    async def send(self, notification: Outgoing) -> Delivery:
        """One try at delivering `notification`; Telegram's answer as a `Delivery`. Anything
        raised is an unexpected failure, retried like FAILED."""
        ...

    async def edit(self, notification: Outgoing, message_id: int) -> Delivery:
        """One try at editing message `message_id` of the chat to `notification` (its text and
        buttons; no buttons removes them), as `send` does."""
        ...
