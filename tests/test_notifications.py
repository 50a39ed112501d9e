"""The outbox against the fake Bot API: each alert delivered once, at Telegram's pace, through
restarts, stops, other replicas' claims and a pacer that is down, on one held connection.
Telegram's faults: tests/test_notifications_faults.py."""

import asyncio
import contextlib
import logging
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import update

from bot.alerting import outbox as outbox_module
from bot.alerting.monitoring import Monitor
from bot.alerting.outbox import Outbox
from bot.alerting.pacing import MemoryPacer, PacingUnavailable
from bot.smsc.client import Balance
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceResult
from bot.storage import direct
from bot.storage.models import Account, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from bot.telegram.sender import TelegramSender
from tests.alerting_fixtures import Counted, looks_hold_their_connection, refusing
from tests.monitoring_fixtures import shop_account
from tests.outbox_fixtures import GROUP, PRIVATE, MonotonicClock, api_bot, queue, settle, stored
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

bot = api_bot  # the real Bot on the fake Bot API (tests/outbox_fixtures.py)


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


async def test_a_stop_waits_for_the_answer_to_a_send_and_begins_no_other(
    bot, telegram, sessionmaker, clock
):
    """Stopped while Telegram is slow to answer: the alert it took is recorded sent, so the
    next start does not send it again; the one waiting behind it goes then, once."""
    telegram.answer_late("sendMessage", 0.5)
    await queue(sessionmaker, clock, PRIVATE)
    await queue(sessionmaker, clock, PRIVATE + 1)
    outbox = Outbox(TelegramSender(bot), sessionmaker, now=clock, concurrency=1)
    outbox.start()
    await telegram.await_for(lambda: telegram.sent(PRIVATE))
    await outbox.stop(grace=5)
    assert telegram.sent(PRIVATE + 1) == []
    telegram.answer_late("sendMessage", 0)
    restarted = Outbox(TelegramSender(bot), sessionmaker, now=clock)
    restarted.start()
    await telegram.await_for(lambda: telegram.sent(PRIVATE + 1))
    await restarted.stop()
    assert len(telegram.sent(PRIVATE)) == len(telegram.sent(PRIVATE + 1)) == 1


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
        account = shop_account(chat_id=GROUP)
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


async def test_an_outbox_that_cannot_reach_its_database_backs_off_and_still_sends(
    outbox, sessionmaker, clock, telegram, monkeypatch, caplog
):
    monkeypatch.setattr(outbox_module, "IDLE_POLL", 0.01)
    monkeypatch.setattr(outbox_module, "FAILED_PASS_WAIT", 0.08)
    caplog.set_level(logging.INFO, logger=outbox_module.__name__)
    monkeypatch.setattr(direct, "held", refusing(direct.held, 6))
    await queue(sessionmaker, clock, PRIVATE)
    outbox.start()
    try:
        await telegram.await_for(lambda: telegram.sent(PRIVATE), timeout=10)
    finally:
        await outbox.stop(grace=5)
    failures = [r.created for r in caplog.records if "outbox pass failed" in r.getMessage()]
    assert len(failures) == 6
    # 0.01, 0.02, 0.04, 0.08, 0.08 apart: a pass a poll apart, these would be 0.05 s in all.
    assert failures[-1] - failures[0] >= 0.2
    assert "outbox passes work again failed=6" in caplog.text
    assert [m["text"] for m in telegram.sent(PRIVATE)] == ["alert 0"]
