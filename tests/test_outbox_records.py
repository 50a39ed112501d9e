"""The outcomes of a batch are written as they come, not at its end: a send Telegram accepted
is marked sent while the others still go out (the bot may die any moment: a sent mark not yet
committed is a message sent twice after the restart), and a stop that runs out of grace still
writes what was sent - after a restart only the unsent go out again."""

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.alerting import claims
from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.outbox import Outbox
from bot.storage.models import Chat, Notification
from tests.outbox_fixtures import PRIVATE, FakeSender, MonotonicClock, queue, stored
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

QUICK, SLOW = 501, 502


class OneSlowChat:
    """Answers at once, except to SLOW: that send waits for `release` (forever if never)."""

    def __init__(self) -> None:
        self.answered = asyncio.Event()
        self.release = asyncio.Event()

    async def send(self, notification: Notification) -> Delivery:
        if notification.chat_id == SLOW:
            await self.release.wait()
        else:
            self.answered.set()
        return Delivery(Outcome.SENT, message_id=notification.chat_id)

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        raise AssertionError("no edits here")


async def queued(sessionmaker) -> None:
    async with sessionmaker() as session:
        session.add_all(Chat(id=c, type="private", language="en") for c in (QUICK, SLOW))
        session.add_all(Notification(chat_id=c, kind="low", text="alert") for c in (QUICK, SLOW))
        await session.commit()


async def sent_chats(sessionmaker) -> set[int]:
    async with sessionmaker() as session:
        query = select(Notification.chat_id).where(Notification.sent_at.is_not(None))
        return set((await session.scalars(query)).all())


async def test_a_send_is_marked_sent_while_its_batch_still_goes_out(sessionmaker):
    await queued(sessionmaker)
    sender = OneSlowChat()
    outbox = Outbox(sender, sessionmaker)
    passing = asyncio.create_task(outbox.deliver_pending())
    await asyncio.wait_for(sender.answered.wait(), 5)
    await asyncio.sleep(0.3)  # a write's time, on a busy machine
    assert not passing.done()
    assert await sent_chats(sessionmaker) == {QUICK}
    sender.release.set()
    assert await passing
    assert await sent_chats(sessionmaker) == {QUICK, SLOW}


async def test_a_stop_out_of_grace_writes_what_was_sent(sessionmaker):
    await queued(sessionmaker)
    sender = OneSlowChat()  # SLOW is never answered
    outbox = Outbox(sender, sessionmaker)
    outbox.start()
    await asyncio.wait_for(sender.answered.wait(), 5)
    await outbox.stop(grace=0)
    assert await sent_chats(sessionmaker) == {QUICK}
    async with sessionmaker() as session:
        leases = dict(
            (await session.execute(select(Notification.chat_id, Notification.lease_until))).all()
        )
    assert leases[QUICK] is None and leases[SLOW] is not None  # SLOW goes again after a restart


class TakenOver:
    """Answers both chats; while QUICK's send is under way, another replica takes it over
    (its lease ran out there): this one must not write over that claim."""

    def __init__(self, sessionmaker) -> None:
        self.sessionmaker = sessionmaker
        self.theirs = datetime.now(UTC) + timedelta(minutes=10)

    async def send(self, notification: Notification) -> Delivery:
        if notification.chat_id == QUICK:
            async with self.sessionmaker() as session:
                await session.execute(
                    update(Notification)
                    .where(Notification.id == notification.id)
                    .values(lease_until=self.theirs)
                )
                await session.commit()
        return Delivery(Outcome.SENT, message_id=notification.chat_id)

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        raise AssertionError("no edits here")


async def test_an_outcome_is_not_written_over_a_claim_taken_over(sessionmaker, caplog):
    await queued(sessionmaker)
    sender = TakenOver(sessionmaker)
    assert await Outbox(sender, sessionmaker).deliver_pending()
    assert await sent_chats(sessionmaker) == {SLOW}
    async with sessionmaker() as session:
        query = select(Notification.lease_until).where(Notification.chat_id == QUICK)
        assert await session.scalar(query) == sender.theirs  # the other replica's, untouched
    assert "lease lost" in caplog.text


class HoldingWrites:
    """Answers three chats; the first answer takes the turn to write, so the first outcome's
    write waits, and the two answered meanwhile are written together after it."""

    def __init__(self, writes: asyncio.Lock) -> None:
        self.writes = writes

    async def send(self, notification: Notification) -> Delivery:
        if notification.chat_id == FIRST:
            await self.writes.acquire()
        elif notification.chat_id == LAST:
            asyncio.get_running_loop().call_later(0.3, self.writes.release)
        return Delivery(Outcome.SENT, message_id=notification.chat_id + 1000)

    async def edit(self, notification: Notification, message_id: int) -> Delivery:
        raise AssertionError("no edits here")


FIRST, LAST = QUICK, 503


async def test_outcomes_written_alone_or_together_read_back_as_written(sessionmaker):
    # A whole second: SQLAlchemy stores it with its microseconds, and a sent mark written any
    # other way ("...:05" for "...:05.000000") would not match the lease it checks.
    now = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    chats = (FIRST, SLOW, LAST)
    async with sessionmaker() as session:
        session.add_all(Chat(id=c, type="private", language="en") for c in chats)
        session.add_all(
            Notification(chat_id=c, kind="low", text="alert", next_attempt_at=now) for c in chats
        )
        await session.commit()
    writes = asyncio.Lock()
    outbox = Outbox(HoldingWrites(writes), sessionmaker, writes=writes, now=lambda: now)
    assert await outbox.deliver_pending()
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Notification))).all()
    assert {(n.chat_id, n.message_id, n.sent_at, n.lease_until) for n in rows} == {
        (c, c + 1000, now, None) for c in chats
    }


def failing_writes(monkeypatch, times: int) -> None:
    """The outbox's first `times` writes of outcomes fail, as in a database outage (through
    the held connection or the pool, whichever the write takes)."""
    failures = []

    def failing(write):
        async def failing_at_first(*args):
            if len(failures) < times:
                failures.append(1)
                raise OSError("disk I/O error")
            return await write(*args)

        return failing_at_first

    for name in ("_marked", "_write"):
        monkeypatch.setattr(claims, name, failing(getattr(claims, name)))


async def test_a_sent_mark_the_database_refused_is_written_and_the_alert_never_resent(
    sessionmaker, clock, monkeypatch
):
    # Telegram accepts the alert, then the database fails for a minute and a half: the sent
    # mark's write and its retry at the end of the pass, then each pass's, all fail. Its lease
    # runs out meanwhile; no pass claims the alert again before writing the mark.
    failing_writes(monkeypatch, times=2 + 90)
    sender = FakeSender()
    outbox = Outbox(sender, sessionmaker, clock=MonotonicClock(clock), now=clock)
    await queue(sessionmaker, clock, PRIVATE)
    for _ in range(120):  # the worker's idle passes, a second apart
        with contextlib.suppress(OSError):
            await outbox.deliver_pending()
        clock.advance(seconds=1)
    assert [what for what, *_ in sender.calls] == ["send"]
    [note] = await stored(sessionmaker)
    assert note.sent_at is not None and note.lease_until is None
