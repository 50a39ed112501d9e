"""The daily digest comes at the chat's local time, once a day, from one replica of a fleet,
and covers every account."""

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.alerting.chats import ChatService
from bot.alerting.digest import Digests, due_day
from bot.storage.engine import create_engine, create_sessionmaker
from bot.storage.models import Account, AccountState, BalanceSample, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.alerting_fixtures import START, Clock
from tests.handler_fixtures import ADMIN, GROUP, say
from tests.servers import BOTH_DATABASES

BILLING = 7  # a forum topic


class Outbox:
    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def digests(sessionmaker, clock: Clock, outbox: Outbox | None = None) -> Digests:
    return Digests(sessionmaker, TelegramRenderer(create_i18n()), outbox or Outbox(), now=clock)


async def add_chat(sessionmaker, chat_id: int, digest_time: str | None, zone: str = "UTC"):
    async with sessionmaker() as session:
        session.add(
            Chat(id=chat_id, type="group", language="en", digest_time=digest_time, timezone=zone)
        )
        session.add(
            Account(
                chat_id=chat_id, name="shop", site="s", login="shop", secret=b"x", check_interval=60
            )
        )
        await session.commit()


async def queued(sessionmaker) -> list[int]:
    """The chats of the digests queued so far, oldest first."""
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(Notification.chat_id).where(Notification.kind == "digest").order_by("id")
        )
        return list(rows)


def test_due_at_the_local_time_within_the_hour():
    # 09:30 in Moscow (UTC+3) is 06:30 UTC; New York (UTC-5 in March) is 14:30 UTC.
    at = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)
    assert due_day("09:30", "Europe/Moscow", at - timedelta(minutes=1)) is None
    assert due_day("09:30", "Europe/Moscow", at) == date(2026, 3, 1)
    assert due_day("09:30", "Europe/Moscow", at + timedelta(hours=1)) == date(2026, 3, 1)
    assert due_day("09:30", "Europe/Moscow", at + timedelta(hours=1, minutes=1)) is None
    assert due_day("09:30", "America/New_York", at) is None
    # 23:50 in New York is the next day in UTC: the digest is still the 1st's.
    late = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)  # 00:00 on the 2nd in New York
    assert due_day("23:50", "America/New_York", late) == date(2026, 3, 1)


@BOTH_DATABASES
async def test_digest_covers_every_account_quietly(sessionmaker):
    now = START + timedelta(days=3)
    async with sessionmaker() as session:
        session.add(Chat(id=-7, type="supergroup", language="en", digest_time="09:00"))
        for name, balance in (("alpha", 900), ("beta", 5000)):
            account = Account(
                chat_id=-7,
                name=name,
                site="s",
                login=name,
                secret=b"x",
                check_interval=60,
                last_balance=Decimal(balance),
                currency="RUB",
                state=AccountState.OK,
                spend_rate=Decimal(100),
            )
            session.add(account)
            await session.flush()
            for hours, amount in ((30, balance + 150), (20, balance + 100), (1, balance)):
                session.add(
                    BalanceSample(
                        account_id=account.id,
                        taken_at=now - timedelta(hours=hours),
                        balance=Decimal(amount),
                        credit=Decimal(0),
                    )
                )
        session.add(
            Account(chat_id=-7, name="new", site="s", login="new", secret=b"x", check_interval=60)
        )
        await session.commit()
    outbox = Outbox()
    clock = Clock()
    clock.now = now
    await digests(sessionmaker, clock, outbox).tick()
    async with sessionmaker() as session:
        [digest] = (await session.scalars(select(Notification))).all()
    assert digest.kind == "digest" and digest.silent and outbox.woken == 1
    text = digest.text
    assert text.index("alpha") < text.index("beta") < text.index("new")
    # 100 inside the day, and 20 of the 50 from 30 h to 20 h ago: the 4 hours of that move
    # within the day (moves are shared by time, as spend rates are).
    assert "900.00 RUB" in text and "Spent in 24 h: 120.00 RUB" in text
    assert "enough for ~9 days" in text and "not checked yet" in text


@BOTH_DATABASES
async def test_digest_counts_the_spend_of_an_account_checked_daily(sessionmaker):
    now = START + timedelta(days=3)
    async with sessionmaker() as session:
        session.add(Chat(id=-7, type="supergroup", language="en", digest_time="09:00"))
        account = Account(
            chat_id=-7,
            name="daily",
            site="s",
            login="daily",
            secret=b"x",
            check_interval=24 * 3600,
            last_balance=Decimal(700),
            currency="RUB",
            state=AccountState.OK,
        )
        session.add(account)
        await session.flush()
        for hours, amount in ((49, 3100), (25, 1900), (1, 700)):
            at = now - timedelta(hours=hours)
            session.add(
                BalanceSample(
                    account_id=account.id, taken_at=at, balance=Decimal(amount), credit=Decimal(0)
                )
            )
        await session.commit()
    clock = Clock()
    clock.now = now
    await digests(sessionmaker, clock).tick()
    async with sessionmaker() as session:
        [digest] = (await session.scalars(select(Notification))).all()
    # One sample in the day: 23 of the 24 hours of the move into it, where it said 0.
    assert "Spent in 24 h: 1,150.00 RUB" in digest.text


async def add_cant_check_account(sessionmaker, now: datetime, language: str) -> None:
    """An account that spent 100 a day until it could not be checked, 3 days before `now`:
    900 left then."""
    async with sessionmaker() as session:
        session.add(Chat(id=-7, type="supergroup", language=language, digest_time="09:00"))
        account = Account(
            chat_id=-7,
            name="broken",
            site="s",
            login="broken",
            secret=b"x",
            check_interval=900,
            last_balance=Decimal(900),
            currency="RUB",
            state=AccountState.CANT_CHECK,
            last_error="auth",
            spend_rate=Decimal(100),
            last_checked_at=now - timedelta(days=3),
        )
        session.add(account)
        await session.flush()
        for hours in range(96):
            session.add(
                BalanceSample(
                    account_id=account.id,
                    taken_at=now - timedelta(days=3, hours=hours),
                    balance=Decimal(900) + Decimal(100) * hours / 24,
                    credit=Decimal(0),
                )
            )
        await session.commit()


@BOTH_DATABASES
@pytest.mark.parametrize(
    ("language", "unknown", "runway"),
    [
        (
            "en",
            "Spent in 24 h: not known, not checked in 24 h",
            "Runway: enough for ~6 days (until 16 Mar).",
        ),
        (
            "ru",
            "Потрачено за 24 ч: неизвестно, за 24 ч не было проверок",
            "Запас: примерно на 6 дней (до 16 мар.).",
        ),
    ],
)
async def test_an_account_not_checked_in_the_day_tells_no_spend_and_its_runway_from_then(
    sessionmaker, language, unknown, runway
):
    now = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    await add_cant_check_account(sessionmaker, now, language)
    clock = Clock()
    clock.now = now
    await digests(sessionmaker, clock).tick()
    async with sessionmaker() as session:
        [digest] = (await session.scalars(select(Notification))).all()
    # It said "Spent in 24 h: 0.00 RUB": nothing is known of the day, not that nothing went.
    assert unknown in digest.text
    assert "900" in digest.text
    # 900 read on 7 Mar at 100 a day runs out on 16 Mar: 6 days on, not 9 (until 19 Mar).
    assert runway in digest.text


@BOTH_DATABASES
async def test_digest_set_by_the_chat_comes_at_its_local_time_once_a_day(sessionmaker, monitor):
    clock = Clock()  # 09:00 UTC
    await add_chat(sessionmaker, 1, None)
    await add_chat(sessionmaker, 2, "09:30", "America/New_York")  # 14:30 UTC
    async with sessionmaker() as session:
        chats = ChatService(session, monitor)
        chat = await chats.get(1)
        await chats.set_timezone(chat, "Europe/Moscow")
        await chats.set_digest(chat, "12:30")  # 09:30 UTC
    job = digests(sessionmaker, clock)
    seen = {}
    for _ in range(2 * 24 * 4):  # every quarter of an hour for two days
        await job.tick()
        for chat_id in (await queued(sessionmaker))[len(seen) :]:
            seen[len(seen)] = (chat_id, clock.now)
        clock.advance(minutes=15)
    day = timedelta(days=1)
    moscow, new_york = START.replace(minute=30), START.replace(hour=14, minute=30)
    assert list(seen.values()) == [
        (1, moscow),
        (2, new_york),
        (1, moscow + day),
        (2, new_york + day),
    ]


@BOTH_DATABASES
async def test_a_late_digest_comes_within_the_hour_else_the_next_day(sessionmaker):
    clock = Clock()
    clock.now = START.replace(hour=10, minute=30)  # the bot was down since 08:50
    await add_chat(sessionmaker, 1, "09:45")
    await add_chat(sessionmaker, 2, "09:00")
    job = digests(sessionmaker, clock)
    await job.tick()
    assert await queued(sessionmaker) == [1]
    clock.advance(days=1, minutes=-90)  # 09:00 the next day
    await job.tick()
    assert await queued(sessionmaker) == [1, 2]


@BOTH_DATABASES
async def test_no_digest_without_accounts_or_when_turned_off(sessionmaker, monitor):
    async with sessionmaker() as session:
        session.add(Chat(id=1, type="private", language="en", digest_time="09:00"))
        await session.commit()
    await add_chat(sessionmaker, 2, "09:00")
    async with sessionmaker() as session:
        chats = ChatService(session, monitor)
        await chats.set_digest(await chats.get(2), None)
    outbox = Outbox()
    await digests(sessionmaker, Clock(), outbox).tick()
    assert await queued(sessionmaker) == [] and outbox.woken == 0


@BOTH_DATABASES
async def test_replicas_ticking_together_queue_one_digest(sessionmaker, database_url):
    await add_chat(sessionmaker, 1, "09:00")
    other = create_engine(database_url)  # the second replica's own connections
    try:
        replicas = [digests(sessionmaker, Clock()), digests(create_sessionmaker(other), Clock())]
        # Both see the digest due before either queues it; then both try at once.
        [due], [also_due] = [await replica.due() for replica in replicas]
        assert due == also_due == (1, START.date())
        claims = await asyncio.gather(*(replica.send(*due) for replica in replicas))
        assert sorted(claims) == [False, True]
        await asyncio.gather(*(replica.tick() for replica in replicas))
    finally:
        await other.dispose()
    assert await queued(sessionmaker) == [1]


@BOTH_DATABASES
async def test_a_chat_moving_zone_after_its_digest_gets_none_twice(sessionmaker, monitor):
    clock = Clock()
    await add_chat(sessionmaker, 1, "09:00")
    job = digests(sessionmaker, clock)
    await job.tick()
    async with sessionmaker() as session:
        chats = ChatService(session, monitor)
        await chats.set_timezone(await chats.get(1), "Europe/Moscow")
    clock.advance(minutes=1)
    await job.tick()  # 12:01 in Moscow, the same day there: already sent
    assert await queued(sessionmaker) == [1]


async def test_database_unavailable_is_one_line_and_the_next_minute_retries(tmp_path, caplog):
    gone = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/bot.db")
    try:
        await digests(create_sessionmaker(gone), Clock()).tick()
    finally:
        await gone.dispose()
    [record] = caplog.records
    assert record.getMessage() == "digests: database unavailable (OperationalError); next minute"
    assert record.exc_info is None


@BOTH_DATABASES
async def test_a_digest_moved_earlier_just_after_it_went_out_waits_for_the_next_day(
    sessionmaker, monitor
):
    # Sent at 00:30; at 00:40 moved to 23:45: yesterday's 23:45 is within the hour, but a
    # later day (today) had its digest already. The next comes at 23:45 tomorrow.
    clock = Clock()
    clock.now = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    await add_chat(sessionmaker, 1, "00:30")
    job = digests(sessionmaker, clock)
    await job.tick()
    clock.advance(minutes=10)
    async with sessionmaker() as session:
        chats = ChatService(session, monitor)
        await chats.set_digest(await chats.get(1), "23:45")
    clock.advance(minutes=1)
    await job.tick()
    clock.now = datetime(2026, 3, 2, 23, 45, tzinfo=UTC)  # the day had its digest
    await job.tick()
    assert await queued(sessionmaker) == [1]
    clock.advance(days=1)
    await job.tick()
    assert await queued(sessionmaker) == [1, 1]


@BOTH_DATABASES
async def test_a_chat_moving_back_across_the_date_line_gets_its_digests_from_the_next_day(
    sessionmaker, monitor
):
    # 09:00 in Tarawa (UTC+12) is 21:00 UTC the day before; in Pago Pago (UTC-11), 20:00 UTC.
    clock = Clock()  # 21:00 on 1 March in Tarawa
    await add_chat(sessionmaker, 1, "09:00", "Pacific/Tarawa")
    job = digests(sessionmaker, clock)
    sent = []
    for hour in range(4 * 24):
        if hour == 13:  # 22:00 UTC, just after the digest of 2 March in Tarawa
            async with sessionmaker() as session:
                chats = ChatService(session, monitor)
                await chats.set_timezone(await chats.get(1), "Pacific/Pago_Pago")
        await job.tick()
        sent += [clock.now] * (len(await queued(sessionmaker)) - len(sent))
        clock.advance(hours=1)
    # 2 March in Pago Pago is the day the chat had already; the days after it come.
    assert sent == [
        datetime(2026, 3, 1, 21, tzinfo=UTC),
        datetime(2026, 3, 3, 20, tzinfo=UTC),
        datetime(2026, 3, 4, 20, tzinfo=UTC),
    ]


@BOTH_DATABASES
async def test_a_day_claimed_while_the_clock_ran_a_year_ahead_stops_no_digest(sessionmaker):
    # NTP stepped the clock back: the chat's last digest day lies a year ahead.
    await add_chat(sessionmaker, 1, "09:00")
    async with sessionmaker() as session:
        (await session.get(Chat, 1)).digest_sent_on = "2027-03-01"
        await session.commit()
    await digests(sessionmaker, Clock()).tick()
    assert await queued(sessionmaker) == [1]


async def test_a_forums_digest_goes_to_the_topic_it_was_set_in(dp, bot, sessionmaker):
    # /add and /digest in the "Billing" topic: the answers go there, and so does the digest
    # (it went to General, away from its accounts' alerts). Set again in General, it comes there.
    await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN, thread_id=BILLING)
    [reply] = await say(dp, bot, GROUP, "/digest 09:00", user_id=ADMIN, thread_id=BILLING)
    assert reply.message_thread_id == BILLING
    clock = Clock()  # 09:00 UTC
    job = digests(sessionmaker, clock)
    await job.tick()
    await say(dp, bot, GROUP, "/digest 09:00", user_id=ADMIN)
    clock.advance(days=1)
    await job.tick()
    async with sessionmaker() as session:
        topics = await session.scalars(
            select(Notification.thread_id).where(Notification.kind == "digest").order_by("id")
        )
        assert list(topics) == [BILLING, None]
