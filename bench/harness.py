"""One real bot process (`python -m bot`) with its own fakes of SMSC and Telegram."""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import threading
import time
from pathlib import Path
from types import TracebackType

from bench import proc
from bench.data import BALANCE, LOW_BALANCE, Layout, connect, login_name, password, seed
from tests.bot_process import BotProcess
from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram

# Alembic loads the migration scripts as modules: one seeding at a time (--smoke runs bots
# side by side).
_SEEDING = threading.Lock()


class BenchError(Exception):
    """The bot misbehaved (died, logged a traceback, never finished): no figure to give."""


class BotRun:
    """Fakes started, the database seeded, then the bot started; `with` stops it all."""

    def __init__(
        self,
        workdir: Path,
        layout: Layout,
        *,
        latency: float,
        low: bool = False,
        **settings: str,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.layout = layout
        self.database = workdir / "bot.db"
        self.smsc = FakeSmsc()
        self.smsc.latency = latency
        self.telegram = FakeTelegram()
        self._low = low
        self._settings = {"CHECK_INTERVAL_SECONDS": "3600", **settings}
        self.bot: BotProcess | None = None
        self.db: sqlite3.Connection | None = None

    def __enter__(self) -> BotRun:
        try:
            self.smsc.start()
            self.telegram.start()
            balance = LOW_BALANCE if self._low else BALANCE
            for login in range(self.layout.logins):
                self.smsc.add_account(login_name(login), password(login), balance=balance)
            self.bot = BotProcess(self.telegram, self.smsc, self.workdir, **self._settings)
            with _SEEDING:
                asyncio.run(
                    seed(
                        f"sqlite+aiosqlite:///{self.database}",
                        self.bot.env["SECRET_KEY"],
                        self.smsc.url,
                        self.layout,
                    )
                )
            self.bot.start()
            self.db = connect(self.database)
            # The fakes answer from threads of this process: a long garbage collection here
            # would show up as the bot's latency. What exists now is kept for the run anyway.
            gc.collect()
            gc.freeze()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        problem = None
        if self.db is not None:
            self.db.close()
        if self.bot is not None and self.bot.process is not None:
            code = self.bot.stop()
            if code != 0:
                problem = f"the bot exited with {code}"
        if self.bot is not None and "Traceback" in self.bot.log():
            problem = "the bot logged a traceback"
        self.telegram.stop()
        self.smsc.stop()
        if problem and exc_type is None:
            raise BenchError(f"{problem}; log: {self.bot.log_path}\n{self.bot.log()[-3000:]}")

    @property
    def pid(self) -> int:
        assert self.bot is not None and self.bot.process is not None
        return self.bot.process.pid

    def sample(self) -> proc.Sample:
        self.check_alive()
        return proc.sample(self.pid)

    def check_alive(self) -> None:
        assert self.bot is not None and self.bot.process is not None
        if self.bot.process.poll() is not None:
            raise BenchError(f"the bot died; log:\n{self.bot.log()[-3000:]}")

    def wait(self, done, *, timeout: float, what: str, every: float = 0.05) -> float:
        """Poll `done()` until true (our own polling: FakeTelegram.wait_for wakes on every
        call, which would take CPU from the bot); returns the monotonic time it was seen."""
        deadline = time.monotonic() + timeout
        while not done():
            self.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"{what}: not done within {timeout:.0f} s")
            time.sleep(every)
        return time.monotonic()
