"""Two levels (issue 15): a warning and a critical threshold. Crossing under the critical level
is its own alert, once per crossing, while the warning is open too (or, crossed while muted, the
mute's end); an injected clock."""

from decimal import Decimal

import pytest

from bot.alerting.events import DigestContent, DigestEntry
from bot.alerting.mutes import MuteEnds
from bot.smsc.errors import SmscAuthError
from bot.storage.models import Account, AccountState, Chat
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from bot.telegram.texts import account_text
from tests.alerting_fixtures import START
from tests.monitoring_fixtures import Checker, shop_account

WARNING, CRITICAL = Decimal(1000), Decimal(300)


@pytest.fixture
async def account(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=-100, type="supergroup", title="Ops", language="en"))
        account = shop_account(threshold=WARNING, critical_threshold=CRITICAL)
        session.add(account)
        await session.commit()
        return account.id


@pytest.fixture
def check(sessionmaker, monitor, clock, account):
    return Checker(sessionmaker, monitor, clock, account)


async def alerts(check) -> list[str]:
    """The alerts' kinds, but top-ups (a rise while low is told as one, as ever)."""
    return [kind for kind in await check.kinds() if kind != "topup"]


async def change(sessionmaker, monitor, account_id, **levels) -> None:
    """Set levels as /threshold does: the last balance is judged again at once."""
    async with sessionmaker() as session:
        account = await session.get(Account, account_id)
        for name, value in levels.items():
            setattr(account, name, value)
        await monitor.threshold_changed(session, account)
        await session.commit()


async def test_critical_crossing_alerts_while_a_warning_is_open(check, clock):
    await check.balance("1500")
    for amount in ("900", "800", "299", "250", "200"):
        clock.advance(minutes=10)
        await check.balance(amount)
    low, critical = await check.alerts()
    assert (low.kind, critical.kind) == ("low", "critical")
    assert not critical.silent and "Check now" in critical.reply_markup
    assert "Critical balance on <b>shop</b>: 299.00 RUB" in critical.text
    assert "below the critical level of 300.00" in critical.text
    assert "https://smsc.ru/payment/" in critical.text
    account = await check.state()
    assert account.state == AccountState.LOW and account.critical_since == START.replace(minute=30)


async def test_a_fall_straight_under_both_levels_is_one_critical_alert(check):
    await check.balance("1500")
    await check.balance("100")
    [alert] = await check.alerts()
    assert alert.kind == "critical" and not alert.silent and alert.reply_markup


async def test_critical_ends_past_the_margin_quietly_and_a_new_crossing_alerts_again(check):
    # 2% margin: the critical state ends at 306, the warning at 1020.
    for amount in ("900", "290", "301", "299", "305.99"):
        await check.balance(amount)
    assert await alerts(check) == ["low", "critical"]
    await check.balance("306")
    cleared = [a for a in await check.alerts() if a.kind != "topup"][-1]
    assert cleared.kind == "critical_cleared" and cleared.silent and not cleared.reply_markup
    assert "no longer critical" in cleared.text and "306.00 RUB" in cleared.text
    account = await check.state()
    assert account.state == AccountState.LOW and account.critical_since is None
    await check.balance("290")
    assert await alerts(check) == ["low", "critical", "critical_cleared", "critical"]


async def test_full_recovery_ends_both_levels_with_one_message(check):
    for amount in ("900", "250", "1019", "2000", "2000"):
        await check.balance(amount)
    assert await alerts(check) == ["low", "critical", "critical_cleared", "recovered"]
    account = await check.state()
    assert account.state == AccountState.OK and account.critical_since is None


async def test_straight_from_critical_to_recovered(check):
    await check.balance("250")
    await check.balance("5000")
    assert await alerts(check) == ["critical", "recovered"]
    recovered = (await check.alerts())[-1]
    assert recovered.silent and "Topped up by 4,750.00 RUB" in recovered.text


async def test_reminders_go_on_while_critical_and_say_so(check, clock):
    await check.balance("900")
    clock.advance(hours=3)
    await check.balance("250")  # the critical alert: the next reminder a full gap after it
    reminders = []
    for _ in range(2 * 12):  # 12 more hours, checked every 30 minutes
        clock.advance(minutes=30)
        await check.balance("250")
        alerts = await check.alerts()
        if alerts[-1].kind == "reminder" and len(alerts) - 2 > len(reminders):
            reminders.append((clock.now - START, alerts[-1].text))
    [(after, text)] = reminders
    assert after.total_seconds() / 3600 == 9
    assert "is still critical: 250.00 RUB" in text


async def test_a_critical_alert_ignores_a_snooze_of_reminders(check, monitor, sessionmaker):
    await check.balance("900")
    async with sessionmaker() as session:
        monitor.snooze(await session.get(Account, check.id), 24)
        await session.commit()
    await check.balance("200")
    assert await check.kinds() == ["low", "critical"]


async def test_a_critical_level_set_above_the_balance_alerts_at_once(check, monitor, sessionmaker):
    await check.balance("900")
    await change(sessionmaker, monitor, check.id, critical_threshold=Decimal(950))
    assert await check.kinds() == ["low", "critical"]
    await check.balance("900")
    assert await check.kinds() == ["low", "critical"]
    # Lowered under the balance, or turned off: the critical state just ends, as for warnings.
    await change(sessionmaker, monitor, check.id, critical_threshold=Decimal(500))
    account = await check.state()
    assert account.state == AccountState.LOW and account.critical_since is None
    await change(sessionmaker, monitor, check.id, critical_threshold=None)
    assert await check.kinds() == ["low", "critical"]


async def test_levels_set_above_an_ok_balance_give_the_critical_alert_only(
    check, monitor, sessionmaker
):
    await check.balance("1500")
    await change(
        sessionmaker, monitor, check.id, threshold=Decimal(3000), critical_threshold=Decimal(2000)
    )
    [alert] = await check.alerts()
    assert alert.kind == "critical"
    assert (await check.state()).critical_since is not None


async def test_a_critical_level_without_a_warning_level(check, monitor, sessionmaker):
    await change(sessionmaker, monitor, check.id, threshold=None)
    for amount in ("500", "250", "280", "400"):
        await check.balance(amount)
    assert await alerts(check) == ["critical", "recovered"]


async def test_cant_check_ends_the_critical_state(check):
    await check.balance("200")
    await check.fail(SmscAuthError(2, "authorise error"))
    assert (await check.state()).critical_since is None
    await check.balance("200")
    assert await check.kinds() == ["critical", "cant_check", "working", "critical"]


async def test_critical_unheard_of_and_its_recovery_are_one_message(check, clock):
    check.telegram_down = True
    await check.balance("900")
    clock.advance(minutes=10)
    await check.balance("200")
    clock.advance(minutes=20)
    await check.balance("2000")
    low, critical, merged = await check.alerts()
    assert low.failure == critical.failure == "stale"
    assert merged.kind == "recovered" and not merged.silent
    assert merged.text.startswith(
        "🚨 <b>shop</b> was low from 1 Mar 09:00 to 1 Mar 09:30, for a time under the critical"
    )


async def test_critical_texts_in_russian_and_the_state_shown(check, sessionmaker):
    async with sessionmaker() as session:
        (await session.get(Chat, -100)).language = "ru"
        await session.commit()
    await check.balance("200")
    [alert] = await check.alerts()
    assert "Критический баланс" in alert.text and "300,00" in alert.text
    i18n = create_i18n()
    account = await check.state()
    with i18n.context(), i18n.use_locale("en"):
        text = account_text(account)
    assert "State: critical" in text and "Critical level: 300.00" in text
    content = DigestContent([DigestEntry(account, Decimal(10))], START, "UTC", "en")
    [digest] = TelegramRenderer(i18n).digest(content)
    assert "200.00 RUB · critical" in digest
    account.critical_since = None
    with i18n.context(), i18n.use_locale("en"):
        assert "State: warning" in account_text(account)


async def muted_then(check, monitor, sessionmaker, clock, amount: str, quiet_hours=None):
    """The account muted for 2 hours (the chat quiet or not), `amount` checked meanwhile; what
    the mute's end says."""
    async with sessionmaker() as session:
        (await session.get(Chat, -100)).quiet_hours = quiet_hours
        monitor.mute(await session.get(Account, check.id), 2)
        await session.commit()
    await check.balance(amount)  # unheard
    clock.advance(hours=2)
    await MuteEnds(sessionmaker, TelegramRenderer(create_i18n()), now=clock).tick()
    [said] = await check.alerts()
    return said


async def test_critical_crossed_while_muted_rings_at_the_mute_end(
    check, monitor, sessionmaker, clock
):
    # 11:00 when the mute ends: quiet hours, which critical alerts ring through.
    said = await muted_then(check, monitor, sessionmaker, clock, "200", "08:00-12:00")
    assert said.kind == "unmuted" and not said.silent and "I'm on it" in said.reply_markup
    assert said.text == (
        "🔔 Alerts for <b>shop</b> are back on. State: critical, balance 200.00 RUB."
    )


async def test_a_warning_while_muted_is_said_quietly_with_the_balance(
    check, monitor, sessionmaker, clock
):
    said = await muted_then(check, monitor, sessionmaker, clock, "900")
    assert said.kind == "unmuted" and said.silent
    assert said.text == "🔔 Alerts for <b>shop</b> are back on. State: warning, balance 900.00 RUB."
