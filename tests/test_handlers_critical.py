"""/threshold with two levels (issue 15): `/threshold <name> critical <amount|off>`, amounts
typed as ever, the levels kept in order, and the state shown as OK / warning / critical."""

from decimal import Decimal

from sqlalchemy import select

from bot.storage.models import Account, Notification
from tests.handler_fixtures import ADMIN, GROUP, MEMBER, say


async def levels(sessionmaker) -> tuple[Decimal | None, Decimal | None]:
    async with sessionmaker() as session:
        account = await session.scalar(select(Account))
    return account.threshold, account.critical_threshold


async def test_critical_level_set_shown_and_turned_off(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right 1000")  # the balance is 150.00
    [reply] = await say(dp, bot, 1, "/threshold shop critical 200")
    assert "critical alert" in reply.text and "200.00" in reply.text
    assert await levels(sessionmaker) == (1000, 200)
    async with sessionmaker() as session:  # set above the balance: the alert comes at once
        kinds = (await session.scalars(select(Notification.kind))).all()
    assert kinds == ["low", "critical"]
    [reply] = await say(dp, bot, 1, "/balance")
    assert "150.00 RUB" in reply.text and "🚨 critical: below 200.00" in reply.text
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "Critical level: 200.00" in reply.text and "State: critical" in reply.text
    [reply] = await say(dp, bot, 1, "/threshold shop critical off")
    assert "No critical alerts" in reply.text
    assert await levels(sessionmaker) == (1000, None)
    [reply] = await say(dp, bot, 1, "/balance")
    assert "⚠️ warning: below 1,000.00" in reply.text
    [reply] = await say(dp, bot, 1, "/accounts")
    assert "Critical level" not in reply.text and "State: warning" in reply.text


async def test_a_second_bare_number_is_part_of_one_amount(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right")
    [reply] = await say(dp, bot, 1, "/threshold shop 500 200")
    assert "500,200.00" in reply.text
    assert await levels(sessionmaker) == (Decimal(500200), None)
    [reply] = await say(dp, bot, 1, "/threshold shop critical 1 000,5")
    assert "1,000.50" in reply.text
    assert await levels(sessionmaker) == (Decimal(500200), Decimal("1000.5"))


async def test_russian_words_and_the_only_account_shorthand(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right 1000")
    await say(dp, bot, 1, "/lang ru")
    [reply] = await say(dp, bot, 1, "/threshold shop критический 250,5")
    assert "критическую" in reply.text and "250,50" in reply.text
    assert await levels(sessionmaker) == (1000, Decimal("250.5"))
    await say(dp, bot, 1, "/threshold shop крит выкл")
    assert await levels(sessionmaker) == (1000, None)
    await say(dp, bot, 1, "/threshold КРИТ 100")  # the name left out: the chat's only account
    assert await levels(sessionmaker) == (1000, 100)
    await say(dp, bot, 1, "/threshold critical off")
    assert await levels(sessionmaker) == (1000, None)


async def test_bad_amounts_get_usage_and_change_nothing(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right 1000")
    await say(dp, bot, 1, "/threshold shop critical 100")
    for text in (
        "/threshold shop critical",
        "/threshold shop critical lots",
        "/threshold shop critical -5",
        "/threshold shop critical 1e3",
        "/threshold shop critical 100 off",
        "/threshold shop 500 critical 100",
        "/threshold shop critical 10000000000",
    ):
        [reply] = await say(dp, bot, 1, text)
        assert "Usage" in reply.text and "critical" in reply.text, text
    assert await levels(sessionmaker) == (1000, 100)


async def test_levels_out_of_order_are_refused(dp, bot, sessionmaker):
    await say(dp, bot, 1, "/add shop right 1000")
    [reply] = await say(dp, bot, 1, "/threshold shop critical 1500")
    assert "can't be above the warning level" in reply.text and "1,000.00" in reply.text
    assert await levels(sessionmaker) == (1000, None)
    await say(dp, bot, 1, "/threshold shop critical 1000")  # equal is allowed
    await say(dp, bot, 1, "/threshold shop critical 300")
    [reply] = await say(dp, bot, 1, "/threshold shop 200")
    assert "can't be below the critical level" in reply.text and "300.00" in reply.text
    assert await levels(sessionmaker) == (1000, 300)
    await say(dp, bot, 1, "/threshold shop off")  # the warning level off: the critical stays
    assert await levels(sessionmaker) == (None, 300)
    await say(dp, bot, 1, "/threshold shop critical 5000")  # no warning level to be above
    assert await levels(sessionmaker) == (None, 5000)


async def test_group_member_may_not_set_the_critical_level(dp, bot, sessionmaker):
    await say(dp, bot, GROUP, "/add shop right 1000", user_id=ADMIN)
    [reply] = await say(dp, bot, GROUP, "/threshold shop critical 100", user_id=MEMBER)
    assert "only administrators" in reply.text
    assert await levels(sessionmaker) == (1000, None)
    [reply] = await say(dp, bot, GROUP, "/threshold shop critical 100", user_id=ADMIN)
    assert "100.00" in reply.text
    assert await levels(sessionmaker) == (1000, 100)


async def test_help_mentions_the_critical_level(dp, bot):
    [reply] = await say(dp, bot, 1, "/help")
    assert "/threshold &lt;name&gt; [critical] &lt;amount|off&gt;" in reply.text
    [reply] = await say(dp, bot, 2, "/help", language="ru")
    assert "[крит]" in reply.text
