"""What the webhook's receiver (bot.webhook) learns of an update from the marks the replicas
share (bot.fleet.update_marks). Imports no redis: the receiver is loaded without REDIS_URL."""

from __future__ import annotations

import enum
from typing import Protocol


class Seen(enum.Enum):
    NEW = "new"  # this replica has taken it: handle it
    UNDER_WAY = "under way"  # another delivery of it is being handled
    DONE = "done"  # handled already


class MarksUnavailable(Exception):
    """Redis did not answer: nobody can tell whether the update was handled."""


class UpdateMarks(Protocol):
    """Marks of the updates handled; each method raises MarksUnavailable."""

    async def take(self, update_id: int) -> Seen:
        """Seen.NEW: marked "under way" by this call."""

    async def done(self, update_id: int) -> None: ...

    async def drop(self, update_id: int) -> None:
        """Not handled after all: its next delivery is."""
