"""The alert rules' tests' account and `check`, a Checker feeding it outcomes as scheduled checks
do (a pytest plugin: tests/conftest.py), on the alerting tests' `monitor` and `clock`
(tests/alerting_fixtures.py)."""

from decimal import Decimal

import pytest
from sqlalchemy import select, update

from bot.smsc.client import Balance
from bot.smsc.guard import BalanceResult
from bot.storage.models import Account, Chat, Notification


def shop_account(chat_id: int = -100, **fields) -> Account:
    """The rules' tests' account: "shop" at smsc.ru, checked every minute, warned under 1000
    unless `fields` say otherwise."""
    return Account(
        chat_id=chat_id,
        name="shop",
        site="https://smsc.ru",
        login="shop",
        secret=b"x",
        check_interval=60,
        **{"threshold": Decimal(1000), **fields},
    )


@pytest.fixture
async def account(sessionmaker):
    async with sessionmaker() as session:
        session.add(Chat(id=-100, type="supergroup", title="Ops", language="en"))
        account = shop_account(thread_id=7)
        session.add(account)
        await session.commit()
        return account.id


class Checker:
    """Feeds results to the monitor in a session of its own, as a scheduled check does.
    Between checks the outbox delivers what was queued, unless `telegram_down`."""

    def __init__(self, sessionmaker, monitor, clock, account_id) -> None:
        self.sessionmaker, self.monitor, self.clock, self.id = (
            sessionmaker,
            monitor,
            clock,
            account_id,
        )
        self.telegram_down = False

    async def balance(self, amount: str, credit: str = "0") -> None:
        result = BalanceResult(
            Balance(Decimal(amount), Decimal(credit), "RUB"), self.clock(), age=0, fresh=True
        )
        await self._record(result)

    async def fail(self, error) -> None:
        await self._record(error)

    async def _record(self, outcome) -> None:
        async with self.sessionmaker() as session:
            if not self.telegram_down:
                await session.execute(
                    update(Notification)
                    .where(Notification.sent_at.is_(None), Notification.failure.is_(None))
                    .values(sent_at=self.clock())
                )
            account = await session.get(Account, self.id)
            await self.monitor.record(session, [(account, outcome)])
            await session.commit()

    async def delivered(self) -> list[str]:
        return [n.kind for n in await self.alerts() if n.failure is None]

    async def state(self) -> Account:
        async with self.sessionmaker() as session:
            return await session.get(Account, self.id)

    async def alerts(self) -> list[Notification]:
        async with self.sessionmaker() as session:
            # New messages only: edits of earlier ones (issue 15) are tested on their own.
            query = select(Notification).where(Notification.edit_of.is_(None))
            return (await session.scalars(query.order_by(Notification.id))).all()

    async def kinds(self) -> list[str]:
        return [n.kind for n in await self.alerts()]


@pytest.fixture
def check(sessionmaker, monitor, clock, account):
    return Checker(sessionmaker, monitor, clock, account)
