"""The running delivery worker keeps Telegram's per-chat pace on its own: a backlog found at
start (nothing wakes the worker, as after a restart) goes out one chat gap apart, not an idle
poll apart. The gap is shortened (Telegram's is 1 s) so the test takes a moment."""

import asyncio
import itertools
import statistics
import time

from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.outbox import IDLE_POLL, Outbox
from bot.alerting.pacing import MemoryPacer
from bot.storage.models import Chat, Notification
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

GAP = 0.2  # a private chat's gap here
CHATS, PER_CHAT = (401, 402, 403), 4


class TimedSender:
    """Accepts every message at once, noting when each chat got it."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {chat_id: [] for chat_id in CHATS}
        self.texts: dict[int, list[str]] = {chat_id: [] for chat_id in CHATS}
        self.all_sent = asyncio.Event()

    async def send(self, notification: Notification) -> Delivery:
        self.times[notification.chat_id].append(time.monotonic())
        self.texts[notification.chat_id].append(notification.text)
        if sum(map(len, self.texts.values())) == len(CHATS) * PER_CHAT:
            self.all_sent.set()
        return Delivery(Outcome.SENT, message_id=len(self.times[notification.chat_id]))

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        raise AssertionError("no edits here")


async def delivered(sessionmaker, sender, chats, per_chat: int) -> None:
    """`per_chat` alerts queued for each of `chats`, then the running worker, until `sender`
    has them all."""
    async with sessionmaker() as session:
        session.add_all(Chat(id=chat_id, type="private", language="en") for chat_id in chats)
        session.add_all(
            Notification(chat_id=chat_id, kind="low", text=f"alert {i}")
            for i in range(per_chat)
            for chat_id in chats
        )
        await session.commit()
    outbox = Outbox(sender, sessionmaker, pacer=MemoryPacer(private_gap=GAP))
    outbox.start()
    try:
        await asyncio.wait_for(sender.all_sent.wait(), 10)
    finally:
        await outbox.stop(grace=5)


async def test_a_backlog_goes_out_at_each_chats_gap_not_at_the_idle_poll(sessionmaker):
    assert IDLE_POLL >= 5 * GAP  # else the old fixed poll would pass this too
    sender = TimedSender()
    await delivered(sessionmaker, sender, CHATS, PER_CHAT)
    expected = [f"alert {i}" for i in range(PER_CHAT)]
    assert all(texts == expected for texts in sender.texts.values())  # each once, in order
    gaps = [b - a for times in sender.times.values() for a, b in itertools.pairwise(times)]
    assert min(gaps) >= GAP  # Telegram's limit kept
    assert statistics.median(gaps) <= 2 * GAP  # and no slower than it needs to be


# Telegram answers messages sent at one moment a few milliseconds apart.
ANSWERED_AFTER = {501: 0.0, 502: 0.002, 503: 0.004}


class AnsweredApart:
    """Answers each chat after its ANSWERED_AFTER, noting when each chat's messages went."""

    def __init__(self) -> None:
        self.times: dict[int, list[float]] = {chat_id: [] for chat_id in ANSWERED_AFTER}
        self.all_sent = asyncio.Event()

    async def send(self, notification: Notification) -> Delivery:
        self.times[notification.chat_id].append(time.monotonic())
        if all(len(times) == 2 for times in self.times.values()):
            self.all_sent.set()
        await asyncio.sleep(ANSWERED_AFTER[notification.chat_id])
        return Delivery(Outcome.SENT, message_id=len(self.times[notification.chat_id]))

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        raise AssertionError("no edits here")


async def test_chats_answered_together_get_their_next_messages_together(sessionmaker):
    sender = AnsweredApart()
    await delivered(sessionmaker, sender, ANSWERED_AFTER, 2)
    # Woken the moment the first chat freed, the outbox sent it alone, and the others a pass
    # later, in the next group of places: 2/9 of a second on. (The bounds leave a busy
    # machine's event loop some lateness.)
    seconds = [times[1] for times in sender.times.values()]
    assert max(seconds) - min(seconds) < 0.08
    gaps = [later - first for first, later in sender.times.values()]
    assert all(GAP <= gap < GAP + 0.08 for gap in gaps), gaps
