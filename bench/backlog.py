"""A restart with a backlog: alerts queued for a few chats while the bot was down, found by it
when it starts again. Nothing wakes the outbox then (no check commits anything), so its pace
is its own: Telegram allows a private chat one message a second, and each chat's messages
should go out that far apart, not an idle poll later."""

from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert

from bench.data import Layout
from bench.harness import BotRun
from bench.report import Row
from bot.storage.models import Notification

TEXT = "Backlog message"
TARGET = 1.1  # s between two messages to one chat: Telegram's 1 s and a tenth for the bot


@dataclass(frozen=True)
class Backlog:
    chats: int
    per_chat: int
    gaps: list[float]  # s between consecutive messages to one chat, all chats together

    @property
    def median(self) -> float:
        return statistics.median(self.gaps)

    @property
    def longest(self) -> float:
        return max(self.gaps)


def backlog(run: BotRun, *, per_chat: int, timeout: float) -> Backlog:
    """The bot stopped, `per_chat` alerts queued for each chat, the bot started again; until
    every one was delivered."""
    bot, probe = run.bots[0], run.probe
    assert probe is not None
    bot.stop()
    now = datetime.now(UTC)
    chats = run.layout.chat_ids
    rows = [
        {"chat_id": chat_id, "kind": "low", "text": f"{TEXT} {n}", "next_attempt_at": now}
        for n in range(per_chat)
        for chat_id in chats
    ]
    probe.run(insert(Notification).values(rows))
    bot.start()

    def sent(chat_id: int) -> list[float]:
        return [
            c.time
            for c in run.telegram.calls_of("sendMessage", chat_id)
            if c.error is None and c.params.get("text", "").startswith(TEXT)
        ]

    run.wait(
        lambda: all(len(sent(chat_id)) >= per_chat for chat_id in chats),
        timeout=timeout,
        what="the backlog after a restart",
        every=0.2,
    )
    gaps = []
    for chat_id in chats:
        times = sent(chat_id)
        gaps += [later - earlier for earlier, later in itertools.pairwise(times)]
    return Backlog(len(chats), per_chat, gaps)


def backlog_rows(work: Path, *, chats: int, per_chat: int, timeout: float) -> list[Row]:
    layout = Layout(chats, chats, 1)
    with BotRun(work / "backlog", layout, latency=0.05) as bot:
        result = backlog(bot, per_chat=per_chat, timeout=timeout)
    label = f"Backlog after a restart, {chats} chats, {per_chat} alerts each"
    return [
        Row(label, "s per chat message, median", result.median, "s", f"<= {TARGET}", 3),
        Row(label, "s per chat message, longest", result.longest, "s", f"<= {TARGET}", 3),
    ]
