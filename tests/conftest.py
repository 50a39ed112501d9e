import logging
import shutil
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import logs
from bot.storage.engine import create_engine, create_sessionmaker, migrate
from tests.bot_process import BotProcess
from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram

# The handlers' test bench (dp, bot, smsc) for every module that drives the Dispatcher.
# Real PostgreSQL and Redis servers, and `database_url` for the engine. The SMSC guard's fetcher,
# state and guard. The /add dialog's, the outbox's, the fleet's guard's and the alert rules'
# tests' helpers.
pytest_plugins = [
    "tests.alerting_fixtures",
    "tests.handler_fixtures",
    "tests.servers",
    "tests.guard_fixtures",
    "tests.add_fixtures",
    "tests.outbox_fixtures",
    "tests.fleet_fixtures",
    "tests.monitoring_fixtures",
]


@pytest.fixture
def trips(monkeypatch) -> list[object]:
    """Each call run on an aiosqlite connection's thread from now on: a trip there and back,
    which wakes that thread and then the event loop (bot.storage.direct)."""
    made: list[object] = []
    execute = aiosqlite.Connection._execute

    async def counted(self, function, *args, **kwargs):
        made.append(function)
        return await execute(self, function, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return made


@pytest.fixture
def installed(monkeypatch):
    """logs.install() for one test, as the running bot has it: every record masked when it is
    made. The record factory and hooks are put back after it."""
    monkeypatch.setattr(logging, "_logRecordFactory", logging.getLogRecordFactory())
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    logs.install()
    logs.install()  # idempotent: one masking layer


@pytest.fixture
async def engine(database_url) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
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


ROOT = Path(__file__).resolve().parent.parent
# What building the wheel reads; copied out so that a build leaves nothing in the checkout.
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "bot", "migrations")


@dataclass(frozen=True)
class InstalledBot:
    source: Path  # the copy of the checkout the wheel was built from
    wheel: Path
    site: Path  # the installed package; first on PYTHONPATH, its scripts in site/bin


@pytest.fixture(scope="session")
def installed_bot(tmp_path_factory) -> InstalledBot:
    """The bot as a user gets it: a wheel built from the checkout (offline, with the test
    environment's setuptools) and installed, not editable, into a folder of its own. The
    end-to-end tests run it, so a file left out of the wheel fails them."""
    base = tmp_path_factory.mktemp("install")
    source, wheels, site = base / "source", base / "wheels", base / "site"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__")
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy(ROOT / name, source)
    pip = [sys.executable, "-m", "pip", "--quiet", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", wheels, source],
        check=True,
    )
    [wheel] = wheels.glob("*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", site, wheel], check=True)
    return InstalledBot(source, wheel, site)


@pytest.fixture
def bot_process(telegram, fake_smsc, tmp_path, installed_bot):
    """Start with `bot_process.start()` (settings may be changed before); stopped at the end.
    It runs the installed wheel, from a folder that holds no copy of the code."""
    process = BotProcess(telegram, fake_smsc, tmp_path, PYTHONPATH=str(installed_bot.site))
    yield process
    if process.process is not None:
        assert process.stop() == 0, process.log()
    assert "Traceback" not in process.log(), process.log()
