"""Alert rules over many checks, with an injected clock: what a chat is told, and how often.
Spending (top-ups, runway, anomalies): tests/test_monitoring_spending.py; alerts Telegram never
delivered: tests/test_monitoring_unheard.py."""

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.alerting import studies
from bot.alerting.chats import ChatService
from bot.smsc.client import Balance
from bot.smsc.errors import SmscAuthError, SmscIpBlocked, SmscProtocolError, SmscUnavailable
from bot.smsc.guard import BalanceResult
from bot.smsc.refusals import LoginPaused
from bot.storage.history import histories_since
from bot.storage.models import Account, AccountState, BalanceSample, Chat
from tests.alerting_fixtures import START, stored_account
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


async def test_one_alert_per_crossing_over_many_checks(check, clock):
    await check.balance("1500")
    for amount in ("990", "980", "970", "960", "950"):
        clock.advance(minutes=1)
        await check.balance(amount)
    [alert] = await check.alerts()
    assert alert.kind == "low" and alert.chat_id == -100 and alert.thread_id == 7
    assert "990.00 RUB" in alert.text and "1,000.00" in alert.text
    assert "https://smsc.ru/payment/" in alert.text
    assert "Snooze 1 h" in alert.reply_markup and "Check now" in alert.reply_markup
    assert (await check.state()).state == AccountState.LOW


async def test_credit_is_shown_when_non_zero(check):
    await check.balance("500", credit="200")
    [alert] = await check.alerts()
    assert "credit 200.00" in alert.text


async def test_reminders_on_a_growing_quiet_period(check, clock):
    await check.balance("900")
    sent_at = []
    for _ in range(6 * 50):  # 50 hours of checks every 10 minutes
        clock.advance(minutes=10)
        await check.balance("900")
        if (await check.kinds()).count("reminder") > len(sent_at):
            sent_at.append(clock.now - START)
    # First after 6 h, then 12 h and 24 h later.
    assert [round(t.total_seconds() / 3600) for t in sent_at] == [6, 18, 42]


async def test_reminders_after_half_a_year_low_stay_weekly(check, clock, monitor, sessionmaker):
    """The 32nd reminder's doubled gap would not fit a timedelta: it comes all the same, the
    next a week later, and an account checked in the same batch still gets its alert."""
    await check.balance("900")
    async with sessionmaker() as session:
        account = await session.get(Account, check.id)
        account.reminders_sent, account.next_reminder_at = 31, clock()
        other = stored_account(-100, "other", threshold=Decimal(1000))
        session.add(other)
        await session.flush()
        outcomes = [
            (checked, BalanceResult(Balance(Decimal(900), Decimal(0), "RUB"), clock(), 0, True))
            for checked in (account, other)
        ]
        await monitor.record(session, outcomes)
        await session.commit()
    assert await check.kinds() == ["low", "reminder", "low"]
    assert (await check.state()).next_reminder_at == clock() + timedelta(days=7)


async def test_reminders_turned_on_while_low_remind(check, clock, sessionmaker, monitor):
    """/remind off, the balance goes low, /remind 3 later: a reminder comes at the next check
    (low for 7 hours by then), and on the growing period after it."""
    async with sessionmaker() as session:
        await ChatService(session, monitor).set_reminders(await session.get(Chat, -100), 0)
    await check.balance("900")
    clock.advance(hours=7)
    await check.balance("900")
    assert await check.kinds() == ["low"]
    async with sessionmaker() as session:
        await ChatService(session, monitor).set_reminders(await session.get(Chat, -100), 3)
    await check.balance("900")
    assert await check.kinds() == ["low", "reminder"]
    assert (await check.state()).next_reminder_at == clock() + timedelta(hours=6)


async def test_reminders_turned_on_for_an_account_low_since_the_first_version(
    check, sessionmaker, monitor
):
    """A database of the bot's first version kept no time an account went low: /remind
    sets its reminder from now, where it failed ("something went wrong") before."""
    async with sessionmaker() as session:
        await ChatService(session, monitor).set_reminders(await session.get(Chat, -100), 0)
    await check.balance("900")
    async with sessionmaker() as session:
        (await session.get(Account, check.id)).low_since = None
        await session.commit()
        before = datetime.now(UTC)
        await ChatService(session, monitor).set_reminders(await session.get(Chat, -100), 3)
    assert (await check.state()).next_reminder_at >= before + timedelta(hours=3)


async def set_reminders(sessionmaker, monitor, hours: int) -> None:
    async with sessionmaker() as session:
        await ChatService(session, monitor).set_reminders(await session.get(Chat, -100), hours)


async def hours_of_reminders(check, clock, hours: int) -> list[int]:
    """Checks every 10 minutes for `hours`: the hours (from now) at which reminders came."""
    came, start, before = [], clock.now, (await check.kinds()).count("reminder")
    for _ in range(6 * hours):
        clock.advance(minutes=10)
        await check.balance("900")
        if (await check.kinds()).count("reminder") > before + len(came):
            came.append(round((clock.now - start).total_seconds() / 3600, 1))
    return came


async def test_reminders_shortened_while_low_come_sooner(check, clock, sessionmaker, monitor):
    """/remind 24, low for 9 hours, /remind 1: the reminder due after an hour low comes at
    the next check, not 15 hours later, and the next after twice as long."""
    await set_reminders(sessionmaker, monitor, 24)
    await check.balance("900")
    clock.advance(hours=9)
    await set_reminders(sessionmaker, monitor, 1)
    assert await hours_of_reminders(check, clock, 4) == [0.2, 2.2]


async def test_reminders_lengthened_while_low_come_later(check, clock, sessionmaker, monitor):
    """/remind 1, low, /remind 24 half an hour later: no reminder after an hour, the first a
    day after the alert; after a reminder the next waits twice the new hours after it."""
    await set_reminders(sessionmaker, monitor, 1)
    await check.balance("900")
    clock.advance(minutes=30)
    await set_reminders(sessionmaker, monitor, 24)
    assert await hours_of_reminders(check, clock, 24) == [23.5]
    clock.advance(hours=1)
    await set_reminders(sessionmaker, monitor, 6)  # due 12 h after that reminder, not 48
    assert await hours_of_reminders(check, clock, 12) == [10.5]


async def test_a_cached_answer_the_account_recorded_already_changes_nothing(check, clock):
    await check.balance("900")  # under 1000: the alert
    checked_at = clock()
    clock.advance(hours=7)  # a reminder is due
    cached = BalanceResult(
        Balance(Decimal(900), Decimal(0), "RUB"), checked_at, age=7 * 3600, fresh=False
    )
    await check._record(cached)  # /balance answered from the guard's cache
    assert await check.kinds() == ["low"]
    await check.balance("900")  # the next check brings it
    assert await check.kinds() == ["low", "reminder"]


async def test_recovery_once_silently_with_amount_topped_up(check, clock):
    await check.balance("900")
    await check.balance("850")
    await check.balance("5850")
    await check.balance("5800")
    assert await check.kinds() == ["low", "recovered"]
    recovery = (await check.alerts())[-1]
    assert recovery.silent and "5,850.00 RUB" in recovery.text and "5,000.00 RUB" in recovery.text
    assert (await check.state()).state == AccountState.OK


async def test_hysteresis_keeps_a_hovering_balance_from_flapping(check):
    for amount in ("999", "1001", "998", "1010", "999.99", "1019"):
        await check.balance(amount)
    assert await check.kinds() == ["low"]  # within 2% above the threshold: still low
    await check.balance("1020")
    assert await check.kinds() == ["low", "recovered"]


async def test_snooze_silences_reminders_until_it_ends(check, clock, monitor, sessionmaker):
    await check.balance("900")
    async with sessionmaker() as session:
        monitor.snooze(await session.get(Account, check.id), 24)
        await session.commit()
    clock.advance(hours=7)
    await check.balance("900")
    assert await check.kinds() == ["low"]
    clock.advance(hours=18)
    await check.balance("900")
    assert await check.kinds() == ["low", "reminder"]


async def test_recovery_ends_a_snooze(check, monitor, sessionmaker):
    await check.balance("900")
    async with sessionmaker() as session:
        monitor.snooze(await session.get(Account, check.id), 24)
        await session.commit()
    await check.balance("2000")
    assert (await check.state()).snoozed_until is None


@pytest.mark.parametrize(
    ("error", "failures_needed", "words"),
    [
        (SmscAuthError(2, "authorise error"), 1, "login or password"),
        (SmscIpBlocked(4, "ip is blocked"), 1, "blocked the bot's IP"),
        (SmscUnavailable("timeout"), 3, "not reachable"),
        (SmscProtocolError("html page"), 3, "unexpected answer"),
    ],
)
async def test_cant_check_once_with_reason_then_working_again(check, error, failures_needed, words):
    await check.balance("1500")
    for _ in range(failures_needed - 1):
        await check.fail(error)
    assert await check.kinds() == []
    for _ in range(3):
        await check.fail(error)
    [alert] = await check.alerts()
    assert alert.kind == "cant_check" and words in alert.text
    assert (await check.state()).state == AccountState.CANT_CHECK
    await check.balance("1400")
    assert await check.kinds() == ["cant_check", "working"]
    assert "1,400.00 RUB" in (await check.alerts())[-1].text


async def test_rate_limit_is_not_a_failure(check):
    await check.balance("1500")
    for _ in range(5):
        await check.fail(LoginPaused(30))
    assert await check.kinds() == []
    assert (await check.state()).state == AccountState.OK


async def test_samples_when_balance_changes_and_at_least_hourly(check, clock, sessionmaker):
    for _ in range(12):  # two hours of unchanged balance every 10 minutes
        await check.balance("1500")
        clock.advance(minutes=10)
    await check.balance("1499")
    async with sessionmaker() as session:
        samples = (await session.scalars(select(BalanceSample))).all()
    assert [str(s.balance) for s in samples] == ["1500", "1500", "1499"]


async def test_a_busy_account_studies_its_history_once_an_hour(check, clock, monkeypatch):
    """A balance that moves is sampled at every check, but its week of history is read (and
    the spend rate worked out again) once an hour, not at every check."""
    reads = []

    async def read(*args):
        reads.append(clock())
        return await histories_since(*args)

    monkeypatch.setattr(studies, "histories_since", read)
    for minute in range(0, 3 * 60, 5):  # three hours, every five minutes
        await check.balance(str(100000 - minute))
        clock.advance(minutes=5)
    gaps = [later - earlier for earlier, later in itertools.pairwise(reads)]
    assert len(reads) in (3, 4) and all(gap == timedelta(hours=1) for gap in gaps)
    assert (await check.state()).last_sample_at == clock() - timedelta(minutes=5)


async def test_alert_in_the_chats_language(check, sessionmaker):
    async with sessionmaker() as session:
        (await session.get(Chat, -100)).language = "ru"
        await session.commit()
    await check.balance("900")
    [alert] = await check.alerts()
    assert "Низкий баланс" in alert.text and "900,00 RUB" in alert.text


async def test_threshold_raised_above_the_balance_alerts_once(check, monitor, sessionmaker):
    await check.balance("1500")
    async with sessionmaker() as session:
        account = await session.get(Account, check.id)
        account.threshold = Decimal(2000)
        await monitor.threshold_changed(session, account)
        await session.commit()
    await check.balance("1500")
    assert await check.kinds() == ["low"]
    async with sessionmaker() as session:
        account = await session.get(Account, check.id)
        account.threshold = Decimal(1000)  # lowered under the balance: the alert just ends
        await monitor.threshold_changed(session, account)
        await session.commit()
    assert (await check.state()).state == AccountState.OK
    assert await check.kinds() == ["low"]


async def test_recovery_from_a_balance_run_dry_says_how_much_was_topped_up(check):
    await check.balance("900")
    await check.balance("0.00")
    await check.balance("5000")
    recovery = (await check.alerts())[-1]
    assert recovery.kind == "recovered" and "Topped up by 5,000.00 RUB" in recovery.text
