"""The handlers' test bench: the real Dispatcher, a recording Bot and an in-memory SMSC.

Registered as a plugin in conftest.py, so every test module gets `dp`, `bot` and `smsc`.
"""

import functools
from decimal import Decimal

import pytest
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.methods import SendMessage
from cryptography.fernet import Fernet
from sqlalchemy import select, update

from bot.alerting.digest import Digests
from bot.alerting.monitoring import Monitor
from bot.config import Settings
from bot.factory import create_dispatcher
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import SmscAuthError
from bot.smsc.guard import BalanceGuard
from bot.storage.crypto import SecretBox
from bot.storage.direct import held
from bot.storage.models import Account, Notification
from bot.telegram.admins import AdminRights
from bot.telegram.alerts import TelegramRenderer
from bot.telegram.handlers.history import history_budget
from bot.telegram.i18n import create_i18n
from tests.mocked_bot import MockedBot, message_update

GROUP = -100500
ADMIN, MEMBER = 11, 12


class MemorySmsc:
    """Answers balance requests from a dict of login -> (password, balance)."""

    def __init__(self) -> None:
        self.accounts = {"shop": ("right", Decimal("150.00"))}
        self.credits: dict[str, Decimal] = {}
        self.requests: list[str | None] = []

    async def fetch_balance(self, creds: Credentials) -> Balance:
        self.requests.append(creds.login)
        password, balance = self.accounts.get(creds.login, (None, None))
        if password != creds.secret:
            raise SmscAuthError(2, "authorise error")
        return Balance(balance, self.credits.get(creds.login, Decimal(0)), "RUB")


@pytest.fixture
def smsc():
    return MemorySmsc()


@pytest.fixture
def bot():
    bot = MockedBot()
    bot.session.admins.add((GROUP, ADMIN))
    return bot


@functools.cache
def shared_dispatcher():
    # aiogram attaches a module's router to one parent only: one Dispatcher for all tests,
    # also those of other modules that import these fixtures.
    # The scheduler and the outbox start with the Dispatcher's startup, which these skip.
    i18n = create_i18n()
    return create_dispatcher(
        settings=Settings(bot_token="42:TEST", smsc_base_url="https://smsc.ru"),
        engine=None,
        sessionmaker=None,
        smsc=None,
        guard=None,
        box=SecretBox(Fernet.generate_key()),
        i18n=i18n,
        monitor=Monitor(TelegramRenderer(i18n)),
        outbox=None,
        checks=None,
        digests=Digests(None, TelegramRenderer(i18n), None),
    )


@pytest.fixture
async def reader(engine):
    """The held connection the bot reads each update's chat through (None off SQLite files)."""
    async with held(engine) as direct:
        yield direct


@pytest.fixture
def dp(engine, sessionmaker, smsc, reader):
    dispatcher = shared_dispatcher()
    dispatcher.workflow_data.update(
        engine=engine,
        sessionmaker=sessionmaker,
        reader=reader,
        guard=BalanceGuard(smsc),
        admin_rights=AdminRights(),
        history_budget=history_budget(),
    )
    dispatcher.fsm.storage = MemoryStorage()
    return dispatcher


async def say(dp, bot, chat_id, text, **kwargs) -> list[SendMessage]:
    before = len(bot.session.requests)
    await dp.feed_update(bot, message_update(chat_id, text, **kwargs))
    return [r for r in bot.session.requests[before:] if isinstance(r, SendMessage)]


async def low_in_group(dp, bot, sessionmaker) -> Account:
    """The group's account "shop", low: its alert sent as message 777."""
    await say(dp, bot, GROUP, "/add shop right", user_id=ADMIN)
    await say(dp, bot, GROUP, "/threshold shop 200", user_id=ADMIN)  # 150 is under it
    async with sessionmaker() as session:
        await session.execute(
            update(Notification)
            .where(Notification.sent_at.is_(None))
            .values(sent_at=Notification.created_at, message_id=777)
        )
        await session.commit()
        return await session.scalar(select(Account))
