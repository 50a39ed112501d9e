"""The daily digest fires at the chat's local time and covers every account."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from bot.alerting.digest import Digests, trigger
from bot.storage.models import Account, AccountState, BalanceSample, Chat, Notification
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.i18n import create_i18n
from tests.test_monitoring import START


class NoOutbox:
    def wake(self) -> None:
        pass


def test_fires_at_the_chats_local_time():
    # 09:30 in Moscow (UTC+3) is 06:30 UTC; asked at 07:00 UTC, the next is tomorrow.
    now = datetime(2026, 3, 1, 7, 0, tzinfo=UTC)
    fire = trigger("09:30", "Europe/Moscow").get_next_fire_time(None, now)
    assert fire.astimezone(UTC) == datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    fire = trigger("09:30", "America/New_York").get_next_fire_time(None, now)
    assert fire.astimezone(UTC) == datetime(2026, 3, 1, 14, 30, tzinfo=UTC)


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
    digests = Digests(sessionmaker, TelegramRenderer(create_i18n()), NoOutbox(), now=lambda: now)
    await digests.send(-7)
    async with sessionmaker() as session:
        [digest] = (await session.scalars(select(Notification))).all()
    assert digest.kind == "digest" and digest.silent
    text = digest.text
    assert text.index("alpha") < text.index("beta") < text.index("new")
    assert "900.00 RUB" in text and "Spent in 24 h: 100.00 RUB" in text
    assert "enough for ~9 days" in text and "not checked yet" in text


async def test_no_digest_for_a_chat_that_turned_it_off(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=-7, type="supergroup", language="en", digest_time=None))
        await session.commit()
    await Digests(sessionmaker, TelegramRenderer(create_i18n()), NoOutbox()).send(-7)
    async with sessionmaker() as session:
        assert (await session.scalars(select(Notification))).all() == []
