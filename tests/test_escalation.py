"""Escalation (issue 15): an alert nobody takes within the chat's minutes brings one follow-up
mentioning the people named, or the administrators; none after acknowledge, snooze or
recovery. Under an injected clock."""

import json
import re
from types import SimpleNamespace

import pytest
from aiogram.types import User
from sqlalchemy import select, update

from bot.alerting.escalation import EscalationStore
from bot.alerting.mutes import MuteEnds
from bot.storage.models import Account, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.escalation import Escalations
from bot.telegram.i18n import create_i18n
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say
from tests.monitoring_fixtures import Checker
from tests.servers import BOTH_DATABASES

pytestmark = BOTH_DATABASES


class Admins:
    """Just getChatAdministrators."""

    def __init__(self) -> None:
        self.asked = 0

    async def get_chat_administrators(self, chat_id):
        self.asked += 1
        return [
            SimpleNamespace(user=User(id=77, is_bot=False, first_name="Olga", last_name="<K>")),
            SimpleNamespace(user=User(id=42, is_bot=True, first_name="SMSC")),
        ]


@pytest.fixture
def admins():
    return Admins()


@pytest.fixture
def escalations(sessionmaker, clock, admins):
    return Escalations(EscalationStore(sessionmaker, now=clock), admins, create_i18n(), None)


async def escalate_after(sessionmaker, minutes, targets):
    async with sessionmaker() as session:
        await session.execute(
            update(Chat).values(escalate_minutes=minutes, escalate_to=json.dumps(targets))
        )
        await session.commit()


async def escalation_notes(sessionmaker) -> list[Notification]:
    async with sessionmaker() as session:
        query = select(Notification).where(Notification.kind == "escalation")
        return (await session.scalars(query)).all()


@pytest.fixture
async def alerted(sessionmaker, monitor, clock, account):
    """A low alert, delivered at START (the next check marks it sent)."""
    await escalate_after(sessionmaker, 15, ["@alice", "@bob_ops"])
    check = Checker(sessionmaker, monitor, clock, account)
    await check.balance("900")
    await check.balance("900")
    return check


async def test_escalates_once_after_the_delay(escalations, alerted, clock, sessionmaker):
    clock.advance(minutes=14)
    assert await escalations.tick() == 0
    clock.advance(minutes=1)
    assert await escalations.tick() == 1
    [note] = await escalation_notes(sessionmaker)
    assert note.silent is False and note.thread_id == 7
    assert "Nobody has taken the alert on <b>shop</b> for 15 min." in note.text
    assert "@alice, @bob_ops" in note.text
    assert "I'm on it" in note.reply_markup
    assert (await alerted.state()).escalated_at == clock.now
    for _ in range(3):
        clock.advance(minutes=20)
        assert await escalations.tick() == 0
    assert len(await escalation_notes(sessionmaker)) == 1


async def test_administrators_are_text_mentions(escalations, alerted, clock, sessionmaker, admins):
    await escalate_after(sessionmaker, 15, ["admins"])
    clock.advance(minutes=15)
    assert await escalations.tick() == 1
    [note] = await escalation_notes(sessionmaker)
    assert '<a href="tg://user?id=77">Olga &lt;K&gt;</a>' in note.text
    assert "tg://user?id=42" not in note.text  # bots are not called


async def test_fifty_administrators_named_at_length_fit_one_message(
    escalations, alerted, clock, sessionmaker, admins, monkeypatch
):
    names = [User(id=n, is_bot=False, first_name="Ж" * 64, last_name="W" * 64) for n in range(50)]

    async def get_chat_administrators(chat_id):
        return [SimpleNamespace(user=user) for user in names]

    monkeypatch.setattr(admins, "get_chat_administrators", get_chat_administrators)
    await escalate_after(sessionmaker, 15, ["admins"])
    clock.advance(minutes=15)
    assert await escalations.tick() == 1
    [note] = await escalation_notes(sessionmaker)
    assert note.text.count("tg://user?id=") == 50
    assert len(re.sub(r"<[^>]+>", "", note.text)) <= 4096  # as Telegram counts: the text shown


async def test_no_escalation_after_acknowledge(escalations, alerted, clock, sessionmaker, monitor):
    clock.advance(minutes=5)
    async with sessionmaker() as session:
        shop = await session.get(Account, alerted.id)
        assert await monitor.acknowledge(session, shop, 5, "Bob", message_id=0)
    clock.advance(minutes=60)
    assert await escalations.tick() == 0
    assert await escalation_notes(sessionmaker) == []


async def test_no_escalation_after_snooze(escalations, alerted, clock, sessionmaker, monitor):
    async with sessionmaker() as session:
        monitor.snooze(await session.get(Account, alerted.id), 1)
        await session.commit()
    clock.advance(hours=3)  # the snooze is over: someone saw the alert all the same
    assert await escalations.tick() == 0


async def test_no_escalation_while_muted(escalations, alerted, clock, sessionmaker, monitor):
    async with sessionmaker() as session:
        monitor.mute(await session.get(Account, alerted.id), 2)
        await session.commit()
    clock.advance(minutes=30)
    assert await escalations.tick() == 0
    clock.advance(hours=2)  # the mute is over, the incident still open and nobody on it
    assert await escalations.tick() == 1


async def test_a_low_while_muted_escalates_after_the_mute(
    escalations, sessionmaker, monitor, clock, account
):
    await escalate_after(sessionmaker, 15, ["@alice"])
    check = Checker(sessionmaker, monitor, clock, account)
    async with sessionmaker() as session:
        monitor.mute(await session.get(Account, account), 2)
        await session.commit()
    await check.balance("900")  # low, unheard
    clock.advance(hours=2)
    await MuteEnds(sessionmaker, TelegramRenderer(create_i18n()), now=clock).tick()
    await check.balance("900")  # the notice of the mute's end goes out
    clock.advance(minutes=15)
    assert await escalations.tick() == 1


async def test_no_escalation_after_recovery(escalations, alerted, clock, sessionmaker):
    clock.advance(minutes=5)
    await alerted.balance("5000")
    clock.advance(minutes=60)
    assert await escalations.tick() == 0
    assert await escalation_notes(sessionmaker) == []


async def test_no_escalation_before_the_alert_went_out(
    escalations, sessionmaker, monitor, clock, account
):
    await escalate_after(sessionmaker, 15, ["@alice"])
    check = Checker(sessionmaker, monitor, clock, account)
    check.telegram_down = True
    await check.balance("900")
    clock.advance(minutes=30)
    assert await escalations.tick() == 0


async def test_a_new_incident_escalates_again(escalations, alerted, clock, sessionmaker):
    clock.advance(minutes=15)
    assert await escalations.tick() == 1
    await alerted.balance("5000")
    await alerted.balance("900")  # low again: a new incident
    await alerted.balance("900")
    clock.advance(minutes=15)
    assert await escalations.tick() == 1


async def test_two_replicas_escalate_once(sessionmaker, alerted, clock, admins):
    first = Escalations(EscalationStore(sessionmaker, now=clock), admins, create_i18n(), None)
    second = Escalations(EscalationStore(sessionmaker, now=clock), admins, create_i18n(), None)
    clock.advance(minutes=15)
    due = await first._store.due()
    assert len(due) == 1
    assert await first._store.escalate(due[0], "first", None)
    assert not await second._store.escalate(due[0], "second", None)
    assert [n.text for n in await escalation_notes(sessionmaker)] == ["first"]


# /escalate


async def test_escalate_command(dp, bot, sessionmaker):
    [reply] = await say(dp, bot, GROUP, "/escalate 15 @alice @bob_ops", user_id=ADMIN)
    assert reply.text == "If nobody takes an alert within 15 min, I will call @alice, @bob_ops."
    async with sessionmaker() as session:
        chat = await session.get(Chat, GROUP)
        assert (chat.escalate_minutes, json.loads(chat.escalate_to)) == (15, ["@alice", "@bob_ops"])
    [reply] = await say(dp, bot, GROUP, "/escalate 30 admins", user_id=ADMIN)
    assert "within 30 min, I will call the administrators" in reply.text
    [reply] = await say(dp, bot, GROUP, "/escalate 5", user_id=ADMIN)
    assert reply.text.startswith("Usage: /escalate")
    [reply] = await say(dp, bot, GROUP, "/escalate 0 admins", user_id=ADMIN)
    assert reply.text.startswith("Usage: /escalate")
    [reply] = await say(dp, bot, GROUP, "/escalate 5 alice", user_id=ADMIN)
    assert reply.text.startswith("Usage: /escalate")
    everyone = " ".join(f"@user{n:04}" for n in range(21))  # one more than may be called
    [reply] = await say(dp, bot, GROUP, f"/escalate 5 {everyone}", user_id=ADMIN)
    assert reply.text.startswith("Usage: /escalate") and "(up to 20)" in reply.text
    await say(dp, bot, GROUP, "/escalate off", user_id=MEMBER)  # not an administrator
    async with sessionmaker() as session:
        assert (await session.get(Chat, GROUP)).escalate_minutes == 30
    [reply] = await say(dp, bot, GROUP, "/escalate выкл", user_id=ADMIN, language="ru")
    async with sessionmaker() as session:
        chat = await session.get(Chat, GROUP)
        assert (chat.escalate_minutes, chat.escalate_to) == (None, None)


async def test_help_lists_escalate(dp, bot):
    [reply] = await say(dp, bot, 1, "/help")
    assert "/escalate" in reply.text
