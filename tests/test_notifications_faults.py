"""The outbox against the fake Bot API: each alert delivered once through Telegram's faults
(limits, outages, blocked chats, upgraded groups, refused tokens and bad requests)."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.alerting.outbox import Outbox
from bot.storage.models import Account, Chat
from tests.outbox_fixtures import (
    GROUP,
    PRIVATE,
    FakeSender,
    MonotonicClock,
    api_bot,
    queue,
    settle,
    stored,
)
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES

bot = api_bot  # the real Bot on the fake Bot API (tests/outbox_fixtures.py)


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


async def test_429s_in_a_row_count_no_attempt_and_the_alert_goes_out(
    outbox, telegram, sessionmaker, clock
):
    telegram.fail("sendMessage", status=429, retry_after=5, times=30)
    await queue(sessionmaker, clock, PRIVATE)
    for _ in range(31):
        await outbox.deliver_pending()
        clock.advance(seconds=5)
    assert len(telegram.sent(PRIVATE)) == 1
    [note] = await stored(sessionmaker)
    assert note.attempts == 0 and note.failure is None


async def test_an_outage_of_hours_delays_the_alert_without_losing_it(
    outbox, telegram, sessionmaker, clock
):
    telegram.fail("sendMessage", status=0, body="drop", times=40)
    await queue(sessionmaker, clock, PRIVATE)
    for _ in range(41):  # almost seven hours: the back-off stays at its cap of five minutes
        await outbox.deliver_pending()
        clock.advance(minutes=10)
    assert len(telegram.sent(PRIVATE)) == 1
    [note] = await stored(sessionmaker)
    assert note.attempts == 40 and note.failure is None


async def test_an_alert_undelivered_for_a_day_is_given_up(
    outbox, telegram, sessionmaker, clock, caplog
):
    telegram.fail("sendMessage", status=502, body="html", times=1000)
    [note_id] = await queue(sessionmaker, clock, PRIVATE)
    for _ in range(30):
        await outbox.deliver_pending()
        clock.advance(hours=1)
    [note] = await stored(sessionmaker)
    assert note.failure == "undelivered for a day"
    assert len(telegram.calls_of("sendMessage")) == 25  # hourly, up to its 24th hour
    [given_up] = [r for r in caplog.records if "given up" in r.getMessage()]
    assert f"id={note_id}" in given_up.getMessage()


@pytest.mark.parametrize(
    ("kind", "late"), [("low", timedelta(days=1)), ("digest", timedelta(hours=1))]
)
async def test_what_waited_too_long_to_matter_is_given_up_unsent(
    outbox, telegram, sessionmaker, clock, caplog, kind, late
):
    """The bot stopped for days, or sending held up: an alert a day old (the balance it tells
    of long changed), a digest an hour late, are given up at their first attempt, with a
    line; one as old but a little younger still goes, and so does the chat's next."""
    [old] = await queue(sessionmaker, clock, PRIVATE, kind=kind)
    clock.advance(minutes=1)
    await queue(sessionmaker, clock, GROUP, kind=kind)
    clock.advance(seconds=late.total_seconds() - 30)
    await settle(outbox, clock, 5)
    assert telegram.sent(PRIVATE) == [] and len(telegram.sent(GROUP)) == 1
    note = next(n for n in await stored(sessionmaker) if n.id == old)
    assert note.failure == "too late" and note.lease_until is None
    [given_up] = [r for r in caplog.records if "given up" in r.getMessage()]
    assert f"id={old} kind={kind}" in given_up.getMessage()
    await queue(sessionmaker, clock, PRIVATE, kind=kind)
    await settle(outbox, clock, 5)
    assert len(telegram.sent(PRIVATE)) == 1


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


@pytest.mark.parametrize("kind", ["low", "digest"])  # a digest set in the topic too
@pytest.mark.parametrize(
    "description", ["Bad Request: message thread not found", "Bad Request: TOPIC_CLOSED"]
)
async def test_an_alert_for_a_deleted_or_closed_topic_reaches_the_group(
    outbox, telegram, sessionmaker, clock, description, kind
):
    telegram.message(GROUP, "/start")  # the fake learns the chat
    telegram.fail("sendMessage", status=400, description=description, chat_id=GROUP)
    await queue(sessionmaker, clock, GROUP, kind=kind, thread_id=9)
    await settle(outbox, clock, 10)
    [sent] = telegram.sent(GROUP)
    assert sent["message_thread_id"] is None and sent["text"] == "alert 0"


async def test_bad_request_gives_up_at_once(outbox, telegram, sessionmaker, clock):
    telegram.fail("sendMessage", status=400, description="Bad Request: message is too long")
    await queue(sessionmaker, clock, PRIVATE)
    await settle(outbox, clock, 30)
    [note] = await stored(sessionmaker)
    assert note.failure == "bad request" and len(telegram.calls_of("sendMessage")) == 1


class RaisingOnFirst(FakeSender):
    """Its send of the first notification raises, as a message stored malformed would."""

    async def send(self, notification):
        if notification.text == "alert 0":
            self.calls.append(("raised", notification.id, None))
            raise ValueError("reply_markup is not JSON")
        return await super().send(notification)


async def test_a_send_that_raises_each_time_holds_its_chat_up_for_minutes_not_a_day(
    sessionmaker, clock, caplog
):
    sender = RaisingOnFirst()
    outbox = Outbox(sender, sessionmaker, clock=MonotonicClock(clock), now=clock)
    first, second = await queue(sessionmaker, clock, PRIVATE, count=2)
    await settle(outbox, clock, 45 * 60)
    assert [c[0] for c in sender.calls].count("raised") == 12
    assert ("send", second, None) in sender.calls  # the chat's next alert went out
    notes = {note.id: note for note in await stored(sessionmaker)}
    assert notes[first].failure == "send raised" and notes[second].sent_at is not None
