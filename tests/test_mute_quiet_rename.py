"""/mute, /rename and /quiet: the commands through the Dispatcher, and what a muted account or
a chat's quiet hours do to the alerts queued, under an injected clock."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from bot.alerting import quiet
from bot.alerting.delivery import Delivery, Outcome
from bot.alerting.events import Rendered
from bot.alerting.monitoring import Monitor
from bot.alerting.mutes import MuteEnds
from bot.alerting.outbox import Outbox
from bot.alerting.queue import AlertQueue
from bot.smsc.client import Balance
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceResult
from bot.storage.models import Account, AccountState, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.monitoring_fixtures import shop_account
from tests.outbox_fixtures import MonotonicClock
from tests.servers import BOTH_DATABASES

# 1 March 2026, 22:00 UTC: 01:00 in Moscow.
NIGHT = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


async def account_and_chat(sessionmaker, chat_id=1) -> tuple[Account, Chat]:
    async with sessionmaker() as session:
        account = await session.scalar(select(Account).where(Account.chat_id == chat_id))
        return account, await session.get(Chat, chat_id)


async def notifications(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        return (await session.scalars(select(Notification).order_by(Notification.id))).all()


# Handlers


async def test_mute_shown_in_accounts_and_ended_by_off(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, "/mute shop 4")
    assert "No alerts for <b>shop</b> until" in reply.text and "(UTC)" in reply.text
    account, _chat = await account_and_chat(sessionmaker)
    left = account.muted_until - datetime.now(UTC)
    assert timedelta(hours=3, minutes=59) < left <= timedelta(hours=4)
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "🔕 Muted until" in reply.text
    [reply] = await say(dp, bot, 1, "/balance")  # reading works while muted
    assert "150.00 RUB" in reply.text
    [reply] = await say(dp, bot, 1, "/mute shop off")
    assert "back on" in reply.text
    [reply] = await say(dp, bot, 1, "/mute off")  # the only account: the name may go
    assert "is not muted" in reply.text
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "Muted" not in reply.text
    assert (await account_and_chat(sessionmaker))[0].muted_until is None


async def test_mute_bad_input_changes_nothing(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    for text in ("/mute", "/mute shop", "/mute shop soon", "/mute shop 0", "/mute shop 721"):
        [reply] = await say(dp, bot, 1, text)
        assert "Usage: /mute" in reply.text, text
    [reply] = await say(dp, bot, 1, "/mute nosuch 4")
    assert "No account named" in reply.text
    assert (await account_and_chat(sessionmaker))[0].muted_until is None
    await say(dp, bot, 1, "/lang ru")
    [reply] = await say(dp, bot, 1, "/mute shop когда-нибудь")
    assert "Использование: /mute" in reply.text


async def test_ended_mute_is_said_once_and_not_shown(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    async with sessionmaker() as session:
        await session.execute(
            update(Account).values(muted_until=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "Muted" not in reply.text
    ends = MuteEnds(sessionmaker, TelegramRenderer(create_i18n()), now=lambda: datetime.now(UTC))
    assert [await ends.tick(), await ends.tick()] == [1, 0]
    [said] = [n for n in await notifications(sessionmaker) if n.kind == "unmuted"]
    assert said.silent and said.text == "🔔 Alerts for <b>shop</b> are back on. State: OK."
    assert (await account_and_chat(sessionmaker))[0].muted_until is None


async def test_rename_rules(dp, bot, smsc, sessionmaker):
    smsc.accounts["other"] = ("pw", Decimal(5))
    await say(dp, bot, 1, "/add shop right")
    await say(dp, bot, 1, "/add other pw")
    [reply] = await say(dp, bot, 1, "/rename shop Main")
    assert reply.text == "Renamed <b>shop</b> to <b>Main</b>."
    for taken in ("OTHER", "other"):  # names are told apart in no letter case
        [reply] = await say(dp, bot, 1, f"/rename main {taken}")
        assert "already has an account named" in reply.text, taken
    [reply] = await say(dp, bot, 1, "/rename main bad<name>")
    assert "can't be a name" in reply.text and "&lt;" in reply.text
    [reply] = await say(dp, bot, 1, "/rename main two words")
    assert "can't be a name" in reply.text
    [reply] = await say(dp, bot, 1, "/rename nosuch x")
    assert "No account named" in reply.text
    [reply] = await say(dp, bot, 1, "/rename main")
    assert "Usage: /rename" in reply.text
    [reply] = await say(dp, bot, 1, "/rename main main")  # its own name in another case
    assert "Renamed" in reply.text
    async with sessionmaker() as session:
        names = sorted((await session.scalars(select(Account.name))).all())
    assert names == ["main", "other"]
    [reply] = await say(dp, bot, 1, "/balance main")
    assert "<b>main</b>: 150.00 RUB" in reply.text


async def test_rename_refuses_a_name_that_reads_as_another(dp, bot, smsc, sessionmaker):
    smsc.accounts["other"] = ("pw", Decimal(10))
    await say(dp, bot, 1, "/add shop right")
    await say(dp, bot, 1, "/add other pw")
    # A Cyrillic dze for the "s", a Greek omicron, full-width letters and digits: /accounts
    # listed two accounts reading "shop".
    for lookalike in ("\u0455hop", "sh\u03bfp", "\uff53\uff48\uff4f\uff50", "\uff15\uff10\uff10"):
        [reply] = await say(dp, bot, 1, f"/rename other {lookalike}")
        assert "each word in one alphabet" in reply.text, lookalike
    await say(dp, bot, 2, "/add shop right", language="ru")
    [reply] = await say(dp, bot, 2, "/rename shop \u0455hop", language="ru")
    assert "каждое слово — буквами одного алфавита" in reply.text
    async with sessionmaker() as session:
        names = sorted((await session.scalars(select(Account.name))).all())
    assert names == ["other", "shop", "shop"]
    [reply] = await say(dp, bot, 1, "/balance \uff53\uff48\uff4f\uff50")  # full-width: shop
    assert "<b>shop</b>: 150.00 RUB" in reply.text


async def test_quiet_hours_setting(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, 1, "/tz Europe/Moscow")
    [reply] = await say(dp, bot, 1, "/quiet 22:00 - 7:00")
    assert "Quiet hours 22:00–07:00 (Europe/Moscow)" in reply.text
    bad = ("/quiet 25:00-07:00", "/quiet 22:00", "/quiet 22:00-22:00", "/quiet soon")
    for text in bad:
        [reply] = await say(dp, bot, 1, text)
        assert "Usage: /quiet" in reply.text, text
    [reply] = await say(dp, bot, 1, "/quiet")  # shows the setting
    assert "22:00–07:00" in reply.text
    assert (await account_and_chat(sessionmaker))[1].quiet_hours == "22:00-07:00"
    [reply] = await say(dp, bot, 1, "/quiet выкл")
    assert "No quiet hours" in reply.text
    assert (await account_and_chat(sessionmaker))[1].quiet_hours is None


async def test_group_members_may_not_mute_rename_or_quiet(dp, bot, sessionmaker):
    await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    for text in ("/mute shop 4", "/rename shop main", "/quiet 22:00-07:00"):
        [reply] = await say(dp, bot, GROUP, text, user_id=MEMBER)
        assert "only administrators" in reply.text, text
    account, chat = await account_and_chat(sessionmaker, GROUP)
    assert (account.name, account.muted_until, chat.quiet_hours) == ("shop", None, None)
    [reply] = await say(dp, bot, GROUP, "/mute shop 1", user_id=ADMIN)
    assert "No alerts" in reply.text


async def test_help_and_menu_list_the_commands(dp, bot):
    [reply] = await say(dp, bot, 1, "/help")
    assert all(f"/{name} " in reply.text for name in ("mute", "rename", "quiet"))
    [reply] = await say(dp, bot, 2, "/help", language="ru")
    assert "/quiet &lt;HH:MM-HH:MM|off&gt; — Тихие часы" in reply.text


# Quiet hours


@pytest.mark.parametrize(
    ("span", "local", "expected"),
    [
        ("22:00-07:00", "23:30", True),
        ("22:00-07:00", "06:59", True),
        ("22:00-07:00", "07:00", False),
        ("22:00-07:00", "21:59", False),
        ("13:00-14:00", "13:00", True),
        ("13:00-14:00", "14:00", False),
        (None, "03:00", False),
    ],
)
def test_quiet_hours_wrap_midnight(span, local, expected):
    hour, minute = map(int, local.split(":"))
    now = datetime(2026, 3, 1, hour, minute, tzinfo=UTC) - timedelta(hours=3)  # Moscow
    assert quiet.is_quiet(span, "Europe/Moscow", now) is expected


# Alerts, under an injected clock


class Clock:
    def __init__(self) -> None:
        self.now = NIGHT

    def __call__(self) -> datetime:
        return self.now


class KindRenderer:
    """Any kind, including those other parts of the bot add ("critical", "escalation")."""

    def alert(self, event, *, buttons=False):
        return Rendered(event.kind)

    def digest(self, content):
        return []


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
async def watched(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=-100, type="supergroup", title="Ops", timezone="Europe/Moscow"))
        session.add(shop_account())
        await session.commit()


async def check(sessionmaker, monitor, clock, outcome) -> Account:
    if isinstance(outcome, str):
        balance = Balance(Decimal(outcome), Decimal(0), "RUB")
        outcome = BalanceResult(balance, clock(), age=0, fresh=True)
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        await monitor.record(session, [(account, outcome)])
        await session.commit()
        return account


@BOTH_DATABASES  # the mute's end is claimed by comparing times in the database
async def test_muted_account_queues_nothing_then_says_the_end_once(sessionmaker, clock, watched):
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    await check(sessionmaker, monitor, clock, "5000")
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        monitor.mute(account, 2)
        await session.commit()
    account = await check(sessionmaker, monitor, clock, "500")  # low, unheard
    assert account.state == AccountState.LOW
    await check(sessionmaker, monitor, clock, "5000")  # recovered and a top-up, unheard
    account = await check(sessionmaker, monitor, clock, SmscAuthError(2, "authorise error"))
    assert account.state == AccountState.CANT_CHECK  # checks stop: only the end is said
    async with sessionmaker() as session:
        queue = AlertQueue(KindRenderer(), clock)
        account, chat = await session.scalar(select(Account)), await session.get(Chat, -100)
        for kind in ("critical", "escalation", "anomaly", "reminder"):
            queue.add(session, chat, account, kind)
        await session.commit()
    assert await notifications(sessionmaker) == []
    ends = MuteEnds(sessionmaker, TelegramRenderer(create_i18n()), now=clock)
    assert await ends.tick() == 0
    clock.now += timedelta(hours=2)
    assert [await ends.tick(), await ends.tick()] == [1, 0]  # said once, checks or not
    [said] = await notifications(sessionmaker)
    assert said.kind == "unmuted" and said.silent
    assert "State: can't check — SMSC refused the login" in said.text
    await check(sessionmaker, monitor, clock, "900")
    # The notice, the incident's alert, is edited to say it is over.
    kinds = [n.kind for n in await notifications(sessionmaker)]
    assert kinds == ["unmuted", "working", "low", "resolved"]


async def test_a_low_while_muted_can_be_taken_once_the_mute_ends(sessionmaker, clock, watched):
    async with sessionmaker() as session:
        await session.execute(update(Account).values(critical_threshold=Decimal(600)))
        await session.commit()
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    await check(sessionmaker, monitor, clock, "5000")
    async with sessionmaker() as session:
        monitor.mute(await session.scalar(select(Account)), 2)
        await session.commit()
    await check(sessionmaker, monitor, clock, "500")  # critical, unheard
    clock.now += timedelta(hours=2)
    await MuteEnds(sessionmaker, TelegramRenderer(create_i18n()), now=clock).tick()
    [said] = await notifications(sessionmaker)
    assert "State: critical, balance 500.00 RUB." in said.text and "I'm on it" in said.reply_markup
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
        assert await monitor.acknowledge(session, account, 5, "Ann", message_id=0)


class SoundRecorder:
    """A sender that records each alert's kind and whether it went without a sound."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bool]] = []

    async def send(self, notification):
        self.sent.append((notification.kind, notification.silent))
        return Delivery(Outcome.SENT, message_id=len(self.sent))


async def delivered(sessionmaker, clock) -> list[tuple[str, bool]]:
    """What the outbox sends now, on the injected clock (a group's pace: the clock runs on)."""
    sender = SoundRecorder()
    outbox = Outbox(sender, sessionmaker, clock=MonotonicClock(clock), now=clock)
    for _ in range(30):
        await outbox.deliver_pending()
        clock.now += timedelta(seconds=3)
    return sender.sent


async def test_quiet_hours_silence_all_but_critical_and_escalation(sessionmaker, clock, watched):
    async with sessionmaker() as session:
        await session.execute(update(Chat).values(quiet_hours="22:00-07:00"))
        await session.commit()
    monitor = Monitor(TelegramRenderer(create_i18n()), now=clock)
    await check(sessionmaker, monitor, clock, "5000")
    await check(sessionmaker, monitor, clock, "500")  # 01:00 in Moscow: quiet
    async with sessionmaker() as session:
        queue = AlertQueue(KindRenderer(), clock)
        account, chat = await session.scalar(select(Account)), await session.get(Chat, -100)
        for kind in ("critical", "escalation", "anomaly"):
            queue.add(session, chat, account, kind)
        queue.add(session, chat, account, "unmuted", silent=True)
        queue.add(session, chat, account, "unmuted")  # the critical alert a mute held back
        await session.commit()
    assert await delivered(sessionmaker, clock) == [
        ("low", True),
        ("critical", False),
        ("escalation", False),
        ("anomaly", True),
        ("unmuted", True),
        ("unmuted", False),
    ]


async def test_quiet_hours_are_those_of_the_moment_an_alert_goes_out(sessionmaker, clock, watched):
    """Queued just before quiet hours and held up past their start (a restart, retries, a
    group's pace), an alert comes silently; queued in them and sent after, it rings."""
    async with sessionmaker() as session:
        await session.execute(update(Chat).values(quiet_hours="02:00-07:00"))
        await session.commit()
        queue = AlertQueue(KindRenderer(), clock)
        account, chat = await session.scalar(select(Account)), await session.get(Chat, -100)
        clock.now = NIGHT + timedelta(minutes=59)  # 01:59 in Moscow
        queue.add(session, chat, account, "anomaly")
        await session.commit()
    clock.now += timedelta(minutes=2)
    assert await delivered(sessionmaker, clock) == [("anomaly", True)]
    async with sessionmaker() as session:
        clock.now = NIGHT + timedelta(hours=5, minutes=59)  # 06:59 in Moscow
        queue.add(session, chat, account, "anomaly")
        await session.commit()
    clock.now += timedelta(minutes=2)
    assert await delivered(sessionmaker, clock) == [("anomaly", False)]
