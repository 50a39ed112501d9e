"""Two outboxes on one PostgreSQL and one Redis, as two replicas of the bot: every notification
reaches its chat once and in order, Telegram's limits hold for both together, and the claims of
a replica that died are taken over once their lease runs out.

Each replica has its own engine and Redis client, as separate processes would; Telegram is a
recording sender in the same process, so the times of all sends are on one clock.
"""

import asyncio
import contextlib
import itertools
import logging
import socket
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from sqlalchemy import select, text

from bot.alerting import outbox as outbox_module
from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.outbox import Outbox
from bot.alerting.pacing import HEADROOM, MESSAGES_PER_SECOND, PLACES_AT_ONCE
from bot.fleet.pacing import PREFIX, RedisPacer
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from bot.storage.models import Chat, Notification

# Short gaps keep the test short; the overall rate stays Telegram's.
PRIVATE_GAP, GROUP_GAP = 0.05, 0.2
BOT_ID = 42


@dataclass(frozen=True)
class Send:
    replica: str
    notification_id: int
    chat_id: int
    at: float  # time.monotonic() when the call to "Telegram" began
    wall: datetime


class Telegram:
    """Accepts every message and notes it. A replica's sends can be held up (`hold`) to stand
    for a slow Telegram, or held forever for a replica killed mid-send."""

    def __init__(self) -> None:
        self.sends: list[Send] = []
        self.calls: list[tuple[str, int]] = []  # (replica, notification id) of every call
        self.gates: dict[str, asyncio.Event] = {}
        self._message_ids = itertools.count(1)
        self._called = asyncio.Event()
        self.flood: dict[int, float] = {}  # chat -> retry_after of one 429 to come
        self.refused_at: list[float] = []

    def sender(self, replica: str) -> "ReplicaSender":
        return ReplicaSender(self, replica)

    def hold(self, replica: str) -> asyncio.Event:
        self.gates[replica] = asyncio.Event()
        return self.gates[replica]

    async def await_calls(self, count: int) -> None:
        while len(self.calls) < count:
            self._called.clear()
            await self._called.wait()

    def ids(self) -> list[int]:
        return [s.notification_id for s in self.sends]


class ReplicaSender:
    def __init__(self, telegram: Telegram, replica: str) -> None:
        self.telegram, self.replica = telegram, replica

    async def send(self, notification: Notification) -> Delivery:
        at, wall = time.monotonic(), datetime.now(UTC)
        self.telegram.calls.append((self.replica, notification.id))
        self.telegram._called.set()
        if (gate := self.telegram.gates.get(self.replica)) is not None:
            await gate.wait()
        if (retry_after := self.telegram.flood.pop(notification.chat_id, None)) is not None:
            self.telegram.refused_at.append(at)
            return Delivery(Outcome.RETRY_AFTER, retry_after=retry_after)
        send = Send(self.replica, notification.id, notification.chat_id, at, wall)
        self.telegram.sends.append(send)
        return Delivery(Outcome.SENT, message_id=next(self.telegram._message_ids))


@pytest.fixture
async def engines(postgres_url):
    """One engine per replica, on one database."""
    first = create_engine(postgres_url)
    await migrate(first)
    second = create_engine(postgres_url)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
async def redis_clients(redis_url):
    clients = Redis.from_url(redis_url), Redis.from_url(redis_url)
    yield clients
    for client in clients:
        await client.aclose()


@pytest.fixture
def telegram():
    return Telegram()


@pytest.fixture
def replicas(engines, redis_clients, telegram):
    def build(lease_seconds: float = 60) -> tuple[Outbox, Outbox]:
        return tuple(  # type: ignore[return-value]
            Outbox(
                telegram.sender(name),
                create_sessionmaker(engine),
                pacer=RedisPacer(
                    redis, bot_id=BOT_ID, private_gap=PRIVATE_GAP, group_gap=GROUP_GAP
                ),
                lease_seconds=lease_seconds,
            )
            for name, engine, redis in zip("ab", engines, redis_clients, strict=True)
        )

    return build


async def queue(engine, counts: dict[int, int]) -> list[int]:
    """`counts[chat_id]` notifications for each chat, interleaved across chats."""
    async with create_sessionmaker(engine)() as session:
        for chat_id in counts:
            kind = "private" if chat_id > 0 else "supergroup"
            session.add(Chat(id=chat_id, type=kind, language="en"))
        notes = [
            Notification(chat_id=chat_id, kind="low", text=f"alert {i}")
            for i in range(max(counts.values()))
            for chat_id, count in counts.items()
            if i < count
        ]
        session.add_all(notes)
        await session.commit()
        return [n.id for n in notes]


async def drain(telegram: Telegram, expected: int, *outboxes: Outbox) -> None:
    """Passes of each outbox, side by side, until `expected` messages went out."""

    async def work(outbox: Outbox) -> None:
        while len(telegram.sends) < expected:
            if not await outbox.deliver_pending():
                await asyncio.sleep(0.01)

    await asyncio.wait_for(asyncio.gather(*(work(o) for o in outboxes)), 30)


def in_order_once(telegram: Telegram, ids: list[int]) -> None:
    assert sorted(telegram.ids()) == sorted(ids)
    assert max(Counter(telegram.ids()).values()) == 1
    by_chat = defaultdict(list)
    for send in telegram.sends:
        by_chat[send.chat_id].append(send.notification_id)
    assert all(sent == sorted(sent) for sent in by_chat.values())


async def test_two_replicas_deliver_each_once_in_order_within_limits(
    engines, replicas, telegram, redis_clients
):
    chats = {**{1000 + i: 20 for i in range(8)}, -1001: 20, -1002: 20}
    ids = await queue(engines[0], chats)
    assert len(ids) == 200
    await drain(telegram, len(ids), *replicas())
    in_order_once(telegram, ids)
    assert {s.replica for s in telegram.sends} == {"a", "b"}  # the work was shared
    for chat_id in chats:
        times = [s.at for s in telegram.sends if s.chat_id == chat_id]
        gap = PRIVATE_GAP if chat_id > 0 else GROUP_GAP
        assert min(b - a for a, b in itertools.pairwise(times)) >= gap, chat_id
    times = sorted(s.at for s in telegram.sends)
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    # Places keep 30 to a second at most (see the test below), in groups that go at once. A
    # send that the busy event loop (two replicas, the test, CI's load) wakes a whole group
    # late crowds in one more, as test_notifications allows for one process.
    assert busiest <= MESSAGES_PER_SECOND + 1
    async with create_sessionmaker(engines[1])() as session:
        notes = (await session.scalars(select(Notification))).all()
    assert all(n.sent_at is not None and n.lease_until is None for n in notes)
    assert all(key.startswith(PREFIX.encode()) for key in await redis_clients[0].keys())


async def test_claims_of_a_replica_killed_mid_send_go_out_from_the_other(
    engines, replicas, telegram
):
    ids = await queue(engines[0], {2001: 3, 2002: 3, -2003: 3})
    dying, survivor = replicas(lease_seconds=1)
    telegram.hold("a")  # never answered: "a" dies waiting
    sending = asyncio.create_task(dying.deliver_pending())
    await asyncio.wait_for(telegram.await_calls(3), 5)
    sending.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sending
    async with create_sessionmaker(engines[1])() as session:
        leases = dict(
            (await session.execute(select(Notification.id, Notification.lease_until))).all()
        )
    assert all(leases[id_] for id_ in ids[:3])  # each chat's oldest, claimed by "a"
    await drain(telegram, len(ids), survivor)
    in_order_once(telegram, ids)
    assert {s.replica for s in telegram.sends} == {"b"}
    assert all(s.wall > leases[s.notification_id] for s in telegram.sends[:3])


async def test_a_send_under_way_or_recorded_is_not_repeated_by_the_other(
    engines, replicas, telegram
):
    ids = await queue(engines[0], {3001: 2, 3002: 1})
    first, second = replicas()
    slow = telegram.hold("a")
    sending = asyncio.create_task(first.deliver_pending())
    await asyncio.wait_for(telegram.await_calls(2), 5)
    for _ in range(5):  # "a" is still waiting for Telegram: "b" leaves both chats alone
        await second.deliver_pending()
        await asyncio.sleep(PRIVATE_GAP)
    assert sorted(telegram.calls) == [("a", ids[0]), ("a", ids[1])]
    slow.set()
    await sending
    await drain(telegram, len(ids), first, second)
    for _ in range(3):  # and nothing is sent again once recorded
        assert not await first.deliver_pending() and not await second.deliver_pending()
        await asyncio.sleep(PRIVATE_GAP)
    in_order_once(telegram, ids)
    assert len(telegram.calls) == 3


async def test_a_chat_told_to_wait_waits_for_every_replica(engines, replicas, telegram):
    ids = await queue(engines[0], {5001: 3})
    telegram.flood[5001] = 0.4  # a 429 with retry_after, for whichever replica asks first
    await drain(telegram, len(ids), *replicas())
    in_order_once(telegram, ids)  # the later ones did not overtake the one told to wait
    [refused_at] = telegram.refused_at
    assert telegram.sends[0].at - refused_at >= 0.4


async def test_redis_down_sends_nothing_and_says_so_once(engines, telegram, caplog):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await queue(engines[0], {4001: 1})
    redis = Redis.from_url(f"redis://127.0.0.1:{port}/0", retry=Retry(NoBackoff(), 0))
    outbox = Outbox(
        telegram.sender("a"),
        create_sessionmaker(engines[0]),
        pacer=RedisPacer(redis, bot_id=BOT_ID),
    )
    try:
        for _ in range(3):
            assert not await outbox.deliver_pending()
    finally:
        await redis.aclose()
    assert telegram.calls == []
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "pacing unavailable" in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    async with create_sessionmaker(engines[0])() as session:
        assert (await session.scalar(select(Notification))).lease_until is None


async def test_its_database_server_away_is_a_line_a_pass_without_traceback(
    telegram, monkeypatch, caplog
):
    # The first failed pass of a PostgreSQL outage logged a traceback, as for a bug.
    monkeypatch.setattr(outbox_module, "IDLE_POLL", 0.01)
    monkeypatch.setattr(outbox_module, "FAILED_PASS_WAIT", 0.02)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    engine = create_engine(f"postgresql+asyncpg://bot@127.0.0.1:{port}/bot")
    outbox = Outbox(telegram.sender("a"), create_sessionmaker(engine))
    caplog.set_level(logging.INFO, logger=outbox_module.__name__)
    outbox.start()
    try:
        await asyncio.sleep(0.3)
    finally:
        await outbox.stop(grace=5)
        await engine.dispose()
    failures = [r for r in caplog.records if "outbox pass failed" in r.getMessage()]
    assert len(failures) >= 3 and "ConnectionRefusedError" in failures[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


async def test_a_held_chat_tells_when_it_frees(redis_clients):
    pacer = RedisPacer(
        redis_clients[0], bot_id=BOT_ID, private_gap=PRIVATE_GAP, group_gap=GROUP_GAP
    )
    first = await pacer.take([6001, -6002])
    assert first.chats == {6001, -6002} and first.next_free is None
    # The other replica finds both held: the private chat frees first, within its gap.
    again = await RedisPacer(redis_clients[1], bot_id=BOT_ID, private_gap=PRIVATE_GAP).take(
        [6001, -6002, 6003]
    )
    assert again.chats == {6003}
    assert again.next_free is not None and 0 < again.next_free <= PRIVATE_GAP


async def test_another_bot_on_the_same_redis_has_limits_of_its_own(redis_clients):
    ours = RedisPacer(redis_clients[0], bot_id=BOT_ID, private_gap=PRIVATE_GAP)
    assert (await ours.take([6001])).chats == {6001}
    staging = RedisPacer(redis_clients[1], bot_id=BOT_ID + 1, private_gap=PRIVATE_GAP)
    assert (await staging.take([6001])).chats == {6001}  # not held up by our message


async def test_no_second_holds_more_places_than_the_rate(redis_clients):
    """The moments of places, as Redis keeps them: a second from one holds Telegram's 30
    places, and the group after them comes a second and a ninth after the first."""
    pacer = RedisPacer(redis_clients[0], bot_id=BOT_ID)
    groups = MESSAGES_PER_SECOND // PLACES_AT_ONCE + 1
    moments = []
    for _ in range(groups * PLACES_AT_ONCE):
        await pacer.place()
        moment = int((await redis_clients[0].get(f"{PREFIX}{BOT_ID}:group")).split(b":")[0])
        if moment not in moments:
            moments.append(moment)
    assert len(moments) == groups
    assert moments[-2] - moments[0] < 1_000_000  # microseconds
    assert moments[-1] - moments[0] >= 1_000_000 / HEADROOM


async def test_places_go_in_groups_for_all_replicas_together(redis_clients):
    pacers = [RedisPacer(client, bot_id=BOT_ID) for client in redis_clients]
    span = PLACES_AT_ONCE / (MESSAGES_PER_SECOND * HEADROOM)

    async def send_times(pacer: RedisPacer) -> tuple[float, float]:
        """The place's moment, on this clock, lies between these two: Redis counted its wait
        from some time between the question and the answer (a loaded machine can hold either
        for tens of milliseconds)."""
        asked = time.monotonic()
        wait = await pacer.place()
        return asked + wait, time.monotonic() + wait

    places = sorted(
        await asyncio.gather(*(send_times(pacers[i % 2]) for i in range(5 * PLACES_AT_ONCE)))
    )
    # Places of one moment are apart by the round trips at most; moments, by the span.
    moments: list[list[tuple[float, float]]] = []
    for place in places:
        if moments and place[0] - moments[-1][0][0] < span / 2:
            moments[-1].append(place)
        else:
            moments.append([place])
    assert all(len(moment) <= PLACES_AT_ONCE for moment in moments)
    assert sum(len(moment) == PLACES_AT_ONCE for moment in moments) >= 4
    # Each moment at least 0.9 span after the one before, as far as the clocks can tell.
    assert all(
        max(late for _, late in b) - min(early for early, _ in a) > span * 0.9
        for a, b in itertools.pairwise(moments)
    )


async def test_a_pass_held_up_by_a_lock_is_cut_and_the_next_sends_once(
    postgres_url, engines, telegram, caplog
):
    # A lock on the notifications nobody lets go (an admin's psql left in a transaction) held
    # the outbox's claim for ever: no alert went out again, and nothing said so.
    [notification] = await queue(engines[0], {6001: 1})
    engine = create_engine(postgres_url, statement_timeout=0.5)
    outbox = Outbox(telegram.sender("a"), create_sessionmaker(engine))
    caplog.set_level(logging.INFO, logger="bot.alerting.outbox")
    cut = asyncio.Event()  # set by the line a failed pass writes
    watch = logging.Handler()
    watch.emit = lambda record: cut.set() if "pass failed" in record.getMessage() else None
    logging.getLogger("bot.alerting.outbox").addHandler(watch)
    try:
        async with engines[1].connect() as psql:
            # Reads go on; a claim (its UPDATE, row locks) waits for the lock.
            await psql.execute(text("LOCK TABLE notifications IN EXCLUSIVE MODE"))
            outbox.start()
            await asyncio.wait_for(cut.wait(), 10)
            assert telegram.calls == []
        # Let go: the worker's next pass (a second after the failed one) sends it, once.
        await asyncio.wait_for(telegram.await_calls(1), 10)
        await outbox.stop(grace=5)
    finally:
        logging.getLogger("bot.alerting.outbox").removeHandler(watch)
        await engine.dispose()
    assert telegram.ids() == [notification] and len(telegram.calls) == 1
    [failed] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "ran past 0.5 s" in failed.getMessage()
    assert any("outbox passes work again" in r.getMessage() for r in caplog.records)
