"""One real bot process (`python -m bot`) with its own fakes of SMSC and Telegram."""

from __future__ import annotations

import gc
import time
from pathlib import Path
from types import TracebackType

from redis import Redis

from bench import proc
from bench.data import BALANCE, LOW_BALANCE, Layout, Probe, login_name, password, seed_now
from tests.bot_process import BotProcess
from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram


class BenchError(Exception):
    """The bot misbehaved (died, logged a traceback, never finished): no figure to give."""


class BotRun:
    """Fakes started, the database seeded, then the bot started: one process on an SQLite file
    of its own, or `replicas` processes in webhook mode on `database` (a PostgreSQL URL) and
    `redis`; `with` stops it all."""

    def __init__(
        self,
        workdir: Path,
        layout: Layout,
        *,
        latency: float,
        low: bool = False,
        database: str | None = None,
        redis: str | None = None,
        replicas: int = 1,
        **settings: str,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.layout = layout
        self.database = database or f"sqlite+aiosqlite:///{workdir / 'bot.db'}"
        self.smsc = FakeSmsc()
        self.smsc.latency = latency
        self.telegram = FakeTelegram()
        self._low = low
        self._replicas = replicas
        self._servers: tuple[int, ...] = ()  # PostgreSQL's postmaster and Redis, if used
        self._probe_backend: int | None = None  # the PostgreSQL process serving the probe
        fleet = {"DATABASE_URL": self.database}
        if redis is not None:
            fleet["REDIS_URL"] = redis
        self._settings = {"CHECK_INTERVAL_SECONDS": "3600", **fleet, **settings}
        self.bots: list[BotProcess] = []
        self.probe: Probe | None = None

    def __enter__(self) -> BotRun:
        try:
            self.smsc.start()
            self.telegram.start()
            balance = LOW_BALANCE if self._low else BALANCE
            for login in range(self.layout.logins):
                self.smsc.add_account(login_name(login), password(login), balance=balance)
            first = BotProcess(
                self.telegram,
                self.smsc,
                self.workdir,
                webhook="REDIS_URL" in self._settings,
                **self._settings,
            )
            self.bots = [first]
            for replica in range(1, self._replicas):
                folder = self.workdir / f"replica-{replica + 1}"
                folder.mkdir(exist_ok=True)
                self.bots.append(first.replica(folder))
            seed_now(self.database, first.env["SECRET_KEY"], self.smsc.url, self.layout)
            self.probe = Probe(self.database)
            if self.counts_checks:
                self.probe.count_checks()
                self._servers = self._find_servers()
            for bot in self.bots:
                bot.start()
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
        problems = []
        if self.probe is not None:
            self.probe.close()
        for bot in self.bots:
            if bot.process is not None:
                code = bot.stop()
                if code != 0:
                    problems.append((bot, f"the bot exited with {code}"))
            if "Traceback" in bot.log():
                problems.append((bot, "the bot logged a traceback"))
        self.telegram.stop()
        self.smsc.stop()
        if problems and exc_type is None:
            bot, problem = problems[0]
            raise BenchError(f"{problem}; log: {bot.log_path}\n{bot.log()[-3000:]}")

    def sample(self) -> proc.Sample:
        """CPU and RSS of the replicas together (the peak is the largest one's)."""
        self.check_alive()
        return proc.combined([proc.sample(bot.process.pid) for bot in self.bots])

    @property
    def counts_checks(self) -> bool:
        """Checks are counted per account where two processes could check one account: on
        PostgreSQL (see Probe.count_checks)."""
        return not self.database.startswith("sqlite")

    def _find_servers(self) -> tuple[int, ...]:
        """PostgreSQL's postmaster (the parent of the probe's backend) and Redis, as they tell:
        both run on this machine, on loopback."""
        assert self.probe is not None
        self._probe_backend = self.probe.backend_pid()
        pids = [proc.parent(self._probe_backend)]
        if "REDIS_URL" in self._settings:
            client = Redis.from_url(self._settings["REDIS_URL"])
            try:
                pids.append(int(client.info("server")["process_id"]))
            finally:
                client.close()
        return tuple(pids)

    def servers_cpu(self) -> float | None:
        """CPU seconds of the database and Redis servers so far, where they run beside, less
        the probe's backend: the benchmark's own counts while it waits for a sweep (one every
        50 ms, each a scan of the accounts) cost PostgreSQL ≈ 0.02 ms of CPU an account."""
        if not self._servers:
            return None
        assert self._probe_backend is not None
        servers = sum(proc.tree_cpu(pid) for pid in self._servers)
        return servers - proc.sample(self._probe_backend).cpu

    def check_alive(self) -> None:
        for bot in self.bots:
            if bot.process is None or bot.process.poll() is not None:
                raise BenchError(f"the bot died; log:\n{bot.log()[-3000:]}")

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
