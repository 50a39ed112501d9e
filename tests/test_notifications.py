"""The outbox against the fake Bot API: each alert delivered once through Telegram's faults."""

import asyncio
import contextlib
import logging
import random
from datetime import timedelta
from decimal import Decimal

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy import select, update

from bot.alerting import outbox as outbox_module
from bot.alerting.monitoring import Monitor
from bot.alerting.outbox import MAX_ATTEMPTS, Outbox
from bot.alerting.pacing import MemoryPacer, PacingUnavailable
from bot.smsc.client import Balance, SmscAuthError
from bot.smsc.guard import BalanceResult
from bot.storage import direct
from bot.storage.models import Account, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from bot.telegram.sender import TelegramSender
from bot.telegram.session import TelegramSession
from tests.alerting_fixtures import START, Clock, Counted, looks_hold_their_connection, refusing
from tests.bot_process import TOKEN
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

GROUP, PRIVATE = -100200, 300


class MonotonicClock:
    """Seconds on the injected wall clock, for the outbox's pacing."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def __call__(self) -> float:
        return (self.clock.now - START).total_seconds()


@pytest.fixture
def refusals():
    return []


@pytest.fixture
async def bot(telegram, refusals):
    session = TelegramSession(
        api=TelegramAPIServer.from_base(telegram.url), on_token_refused=refusals.append
    )
    bot = Bot(TOKEN, session=session)
    yield bot
    await bot.session.close()


@pytest.fixture
def outbox(bot, sessionmaker, clock):
    return Outbox(
        TelegramSender(bot),
        sessionmaker,
        clock=MonotonicClock(clock),
        now=clock,
        rng=random.Random(1),
    )


async def queue(sessionmaker, clock, chat_id, count=1, **fields) -> list[int]:
    async with sessionmaker() as session:
        if await session.get(Chat, chat_id) is None:
            kind = "private" if chat_id > 0 else "supergroup"
            session.add(Chat(id=chat_id, type=kind, language="en"))
        notes = [
            Notification(
                chat_id=chat_id, kind="low", text=f"alert {i}", next_attempt_at=clock.now, **fields
            )
            for i in range(count)
        ]
        session.add_all(notes)
        await session.commit()
        return [n.id for n in notes]


async def stored(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        return (await session.scalars(select(Notification).order_by(Notification.id))).all()


async def settle(outbox, clock, seconds=60):
    """Passes of the worker while the injected clock runs `seconds` forward."""
    for _ in range(seconds * 2):
        await outbox.deliver_pending()
        clock.advance(seconds=0.5)


async def test_delivered_once_with_its_topic_buttons_and_silence(
    outbox, telegram, sessionmaker, clock
):
    markup = '{"inline_keyboard": [[{"text": "Check now", "callback_data": "alert:1:0"}]]}'
    await queue(sessionmaker, clock, GROUP, thread_id=9, reply_markup=markup, silent=True)
    await settle(outbox, clock, 10)
    [message] = telegram.sent(GROUP)
    assert message["text"] == "alert 0" and message["message_thread_id"] == 9
    assert message["reply_markup"]["inline_keyboard"][0][0]["text"] == "Check now"
    assert message["disable_notification"] is True
    [note] = await stored(sessionmaker)
    assert note.sent_at is not None and note.message_id == message["message_id"]


async def test_429_waits_retry_after_then_delivers_once(outbox, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=429, retry_after=5)
    await queue(sessionmaker, clock, PRIVATE)
    await outbox.deliver_pending()
    clock.advance(seconds=4)
    await outbox.deliver_pending()
    assert telegram.sent(PRIVATE) == []
    await settle(outbox, clock, 5)
    assert len(telegram.sent(PRIVATE)) == 1
    assert len(telegram.calls_of("sendMessage")) == 2


async def test_server_errors_retried_with_backoff(outbox, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=502, times=3)
    await queue(sessionmaker, clock, PRIVATE)
    await settle(outbox, clock, 60)
    assert len(telegram.sent(PRIVATE)) == 1
    times = [c.time for c in telegram.calls_of("sendMessage")]
    assert len(times) == 4
    [note] = await stored(sessionmaker)
    assert note.attempts == 3


async def test_blocked_chat_is_deactivated_and_its_alerts_dropped(
    outbox, telegram, sessionmaker, clock
):
    telegram.message(PRIVATE, "/start")  # the fake learns the chat
    telegram.block(PRIVATE)
    await queue(sessionmaker, clock, PRIVATE, count=3)
    await settle(outbox, clock, 10)
    assert telegram.sent(PRIVATE) == []
    assert len(telegram.calls_of("sendMessage")) == 1  # no hammering a chat that is gone
    assert all(n.failure for n in await stored(sessionmaker))
    async with sessionmaker() as session:
        assert (await session.get(Chat, PRIVATE)).active is False


async def test_upgraded_group_moves_and_gets_its_alert(outbox, telegram, sessionmaker, clock):
    old, new = -555, -100555
    telegram.message(old, "/start", chat_type="group", title="Ops")
    telegram.migrate(old, new)
    await queue(sessionmaker, clock, old)
    async with sessionmaker() as session:
        session.add(
            Account(
                chat_id=old, name="shop", site="s", login="shop", secret=b"x", check_interval=60
            )
        )
        await session.commit()
    await settle(outbox, clock, 10)
    assert len(telegram.sent(new)) == 1 and telegram.sent(old) == []
    async with sessionmaker() as session:
        assert (await session.scalar(select(Account))).chat_id == new
        assert await session.get(Chat, old) is None


async def test_one_message_per_group_every_three_seconds(outbox, telegram, sessionmaker, clock):
    await queue(sessionmaker, clock, GROUP, count=4)
    await settle(outbox, clock, 6)
    assert 2 <= len(telegram.sent(GROUP)) <= 3
    await settle(outbox, clock, 10)
    assert [m["text"] for m in telegram.sent(GROUP)] == [f"alert {i}" for i in range(4)]


async def test_overall_pace_stays_under_30_a_second(bot, telegram, sessionmaker, clock):
    outbox = Outbox(TelegramSender(bot), sessionmaker, now=clock)  # real time paces the sends
    for chat_id in range(1000, 1075):
        await queue(sessionmaker, clock, chat_id)
    while await outbox.deliver_pending():
        pass
    times = sorted(c.time for c in telegram.calls_of("sendMessage"))
    assert len(times) == 75
    busiest = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest <= 31  # 30 a second, give or take the first one


async def test_unsent_notifications_survive_a_restart(bot, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=502, times=2)
    await queue(sessionmaker, clock, PRIVATE)
    await queue(sessionmaker, clock, PRIVATE + 1)
    first = Outbox(TelegramSender(bot), sessionmaker, clock=MonotonicClock(clock), now=clock)
    await first.deliver_pending()
    assert telegram.sent() == []
    # A new worker (the bot restarted) finds both still due, and sends each once.
    clock.advance(minutes=1)
    second = Outbox(TelegramSender(bot), sessionmaker, clock=MonotonicClock(clock), now=clock)
    await settle(second, clock, 10)
    assert [(m["chat"]["id"], m["text"]) for m in telegram.sent()] == [
        (PRIVATE, "alert 0"),
        (PRIVATE + 1, "alert 0"),
    ]


@pytest.mark.parametrize(
    ("status", "body"), [(502, "html"), (504, "html"), (500, "json"), (0, "drop")]
)
async def test_outages_back_off_count_and_log_one_line_each(
    outbox, telegram, sessionmaker, clock, caplog, status, body
):
    telegram.fail("sendMessage", status=status or 502, body=body, times=3)
    [note_id] = await queue(sessionmaker, clock, PRIVATE)
    await settle(outbox, clock, 60)
    assert len(telegram.sent(PRIVATE)) == 1
    [note] = await stored(sessionmaker)
    assert note.attempts == 3
    failures = [r for r in caplog.records if "send failed" in r.getMessage()]
    assert len(failures) == 3 and not any(r.exc_info or r.exc_text for r in caplog.records)
    assert all(
        f"id={note_id}" in r.getMessage() and "<html>" not in r.getMessage() for r in failures
    )
    # Waits double (2, 4, 8 s, jittered by a quarter at most): no retry a second.
    times = [c.time for c in telegram.calls_of("sendMessage")]
    assert len(times) == 4


async def test_retry_waits_double_with_jitter(outbox, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=502, body="html", times=4)
    await queue(sessionmaker, clock, PRIVATE)
    waits = []
    for _ in range(4):
        await outbox.deliver_pending()
        [note] = await stored(sessionmaker)
        waits.append((note.next_attempt_at - clock.now).total_seconds())
        clock.advance(seconds=waits[-1])
    for attempt, wait in enumerate(waits):
        assert 2 * 2**attempt * 0.75 <= wait <= 2 * 2**attempt * 1.25


async def test_gives_up_after_max_attempts(outbox, telegram, sessionmaker, clock, caplog):
    telegram.fail("sendMessage", status=502, body="html", times=MAX_ATTEMPTS + 5)
    await queue(sessionmaker, clock, PRIVATE)
    for _ in range(MAX_ATTEMPTS + 3):
        await outbox.deliver_pending()
        clock.advance(minutes=10)
    [note] = await stored(sessionmaker)
    assert note.failure == "too many failures" and note.attempts == MAX_ATTEMPTS - 1
    assert len(telegram.calls_of("sendMessage")) == MAX_ATTEMPTS
    assert "given up" in caplog.text


@pytest.mark.parametrize("status", [401, 404])
async def test_refused_token_pauses_sending_and_keeps_the_notification(
    outbox, telegram, sessionmaker, clock, caplog, refusals, status
):
    telegram.fail("sendMessage", status=status, times=100)
    await queue(sessionmaker, clock, PRIVATE, count=3)
    await settle(outbox, clock, 30)
    assert len(telegram.calls_of("sendMessage")) == 1  # no retrying a dead token
    assert outbox.paused and refusals
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "refused the bot token" in errors[0].getMessage()
    notes = await stored(sessionmaker)
    assert all(n.sent_at is None and n.failure is None and n.attempts == 0 for n in notes)


async def test_bad_request_gives_up_at_once(outbox, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=400, description="Bad Request: message is too long")
    await queue(sessionmaker, clock, PRIVATE)
    await settle(outbox, clock, 30)
    [note] = await stored(sessionmaker)
    assert note.failure == "bad request" and len(telegram.calls_of("sendMessage")) == 1


async def test_stop_does_not_wait_for_a_hanging_send(bot, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=0, body="hang")
    await queue(sessionmaker, clock, PRIVATE)
    outbox = Outbox(TelegramSender(bot), sessionmaker, now=clock)
    outbox.start()
    await telegram.await_for(lambda: telegram.calls_of("sendMessage"))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await outbox.stop(grace=0.3)
    assert loop.time() - started < 1
    [note] = await stored(sessionmaker)
    assert note.sent_at is None and note.lease_until is not None
    # The next start of the one process sending (no shared pacer) sends it at once: the
    # claim its killed send left is its own, no need to wait for the lease to run out.
    restarted = Outbox(TelegramSender(bot), sessionmaker, now=clock)
    restarted.start()
    await telegram.await_for(lambda: telegram.sent(PRIVATE))
    await restarted.stop()
    assert len(telegram.sent(PRIVATE)) == 1


async def test_a_chat_waits_while_its_oldest_alert_is_claimed_elsewhere(
    bot, telegram, sessionmaker, clock
):
    """Two outboxes on one database, as two replicas: one claims a chat's first alert and
    dies mid-send. The other sends nothing to that chat (not even its second alert) until the
    claim's lease runs out, then both, in order, once each."""
    telegram.fail("sendMessage", status=0, body="hang")
    await queue(sessionmaker, clock, PRIVATE, count=2)
    replica = {"clock": MonotonicClock(clock), "now": clock, "lease_seconds": 30}
    dying = Outbox(TelegramSender(bot), sessionmaker, **replica)
    send = asyncio.create_task(dying.deliver_pending())
    await telegram.await_for(lambda: telegram.calls_of("sendMessage"))
    send.cancel()  # killed mid-send: its claim stays until the lease runs out
    with contextlib.suppress(asyncio.CancelledError):
        await send
    other = Outbox(TelegramSender(bot), sessionmaker, **replica)
    await settle(other, clock, 29)
    assert len(telegram.calls_of("sendMessage")) == 1 and telegram.sent() == []
    await settle(other, clock, 5)
    assert [m["text"] for m in telegram.sent(PRIVATE)] == ["alert 0", "alert 1"]
    assert len(telegram.calls_of("sendMessage")) == 3
    assert all(n.sent_at and n.lease_until is None for n in await stored(sessionmaker))


async def test_an_alert_being_sent_is_not_dropped_as_stale(sessionmaker, clock):
    """ "Can't check" claimed by an outbox (another replica's) when checks work again: it
    reaches the chat, so "works again" must follow it, not be dropped with it."""
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    async with sessionmaker() as session:
        session.add(Chat(id=GROUP, type="supergroup", title="Ops", language="en"))
        account = Account(
            chat_id=GROUP,
            name="shop",
            site="https://smsc.ru",
            login="shop",
            secret=b"x",
            check_interval=60,
            threshold=Decimal(1000),
        )
        session.add(account)
        await session.commit()
        await monitor.record(session, [(account, SmscAuthError(2, "authorise error"))])
        await session.commit()
        lease = clock.now + timedelta(seconds=60)
        await session.execute(update(Notification).values(lease_until=lease))
        await session.commit()
    clock.advance(seconds=20)
    async with sessionmaker() as session:
        account = await session.get(Account, account.id)
        balance = Balance(Decimal(1500), Decimal(0), "RUB")
        await monitor.record(session, [(account, BalanceResult(balance, clock(), 0, True))])
        await session.commit()
    notes = [n for n in await stored(sessionmaker) if n.edit_of is None]  # edits: issue 15
    assert [(n.kind, n.failure) for n in notes] == [("cant_check", None), ("working", None)]


class FlakyPacer(MemoryPacer):
    """A pacer whose shared store (Redis, for a fleet) is down until `down` is cleared."""

    down = True

    async def place(self) -> float:
        if self.down:
            raise PacingUnavailable("ConnectionError('Connection refused')")
        return await super().place()


async def test_nothing_goes_unpaced_while_pacing_is_down(
    bot, telegram, sessionmaker, clock, caplog
):
    caplog.set_level(logging.INFO, logger="bot.alerting.outbox")
    await queue(sessionmaker, clock, PRIVATE)
    pacer = FlakyPacer(clock=MonotonicClock(clock))
    outbox = Outbox(TelegramSender(bot), sessionmaker, pacer=pacer, now=clock)
    await settle(outbox, clock, 5)
    assert telegram.calls_of("sendMessage") == []
    [note] = await stored(sessionmaker)
    assert note.lease_until is None and note.attempts == 0  # given back, not failed
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "pacing unavailable" in warning.getMessage() and not warning.exc_info
    pacer.down = False
    await settle(outbox, clock, 2)
    assert len(telegram.sent(PRIVATE)) == 1 and "available again" in caplog.text


async def test_an_idle_outbox_keeps_to_one_connection_and_sends_what_comes(
    outbox, engine, sessionmaker, clock, telegram, monkeypatch
):
    # Through the pool, each look for work on SQLite took a connection and five trips to
    # aiosqlite's thread: one look a second kept 0.3 % of a core busy on an idle bot.
    monkeypatch.setattr(outbox_module, "IDLE_POLL", 0.01)
    passes = Counted(monkeypatch, outbox, "deliver_pending")
    outbox.start()
    try:
        assert await looks_hold_their_connection(engine, passes)
        await queue(sessionmaker, clock, PRIVATE)
        outbox.wake()
        await telegram.await_for(lambda: telegram.sent(PRIVATE), timeout=10)
    finally:
        await outbox.stop(grace=5)
    assert [m["text"] for m in telegram.sent(PRIVATE)] == ["alert 0"]
    assert engine.sync_engine.pool.checkedout() == 0  # the outbox's connection is back


async def test_an_outbox_that_cannot_hold_its_connection_yet_still_sends(
    outbox, sessionmaker, clock, telegram, monkeypatch, caplog
):
    monkeypatch.setattr(outbox_module, "IDLE_POLL", 0.01)
    monkeypatch.setattr(direct, "held", refusing(direct.held, 3))
    await queue(sessionmaker, clock, PRIVATE)
    outbox.start()
    try:
        await telegram.await_for(lambda: telegram.sent(PRIVATE), timeout=10)
    finally:
        await outbox.stop(grace=5)
    assert [m["text"] for m in telegram.sent(PRIVATE)] == ["alert 0"]
    assert caplog.text.count("outbox pass failed") == 3
