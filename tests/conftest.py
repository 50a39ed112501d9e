from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.storage import create_engine, create_sessionmaker, migrate
from tests.bot_process import BotProcess
from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram

# The handlers' test bench (dp, bot, smsc) for every module that drives the Dispatcher.
pytest_plugins = ["tests.handler_fixtures"]


@pytest.fixture
async def engine(tmp_path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/test.db")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def fake_smsc():
    with FakeSmsc() as smsc:
        yield smsc


@pytest.fixture
def telegram():
    with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def bot_process(telegram, fake_smsc, tmp_path):
    """Start with `bot_process.start()` (settings may be changed before); stopped at the end."""
    process = BotProcess(telegram, fake_smsc, tmp_path)
    yield process
    if process.process is not None:
        assert process.stop() == 0, process.log()
    assert "Traceback" not in process.log(), process.log()
