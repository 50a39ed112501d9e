"""The real bot (`python -m bot`) as a child process, wired to the loopback fakes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram

TOKEN = "7000001:TEST-token"


class BotProcess:
    def __init__(
        self, telegram: FakeTelegram, smsc: FakeSmsc, data_dir: Path, **settings: str
    ) -> None:
        self.telegram = telegram
        self.log_path = data_dir / "bot.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": telegram.url,
            "SMSC_BASE_URL": smsc.url,
            "DATABASE_URL": f"sqlite+aiosqlite:///{data_dir}/bot.db",
            "SECRET_KEY": Fernet.generate_key().decode(),
            "LOG_LEVEL": "INFO",
            **settings,
        }
        self.cwd = data_dir
        self.command = [sys.executable, "-m", "bot"]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> BotProcess:
        """Launch, and wait until the bot polls Telegram."""
        polls_before = len(self.telegram.calls_of("getUpdates"))
        self.launch()
        self.telegram.wait_for(
            lambda: len(self.telegram.calls_of("getUpdates")) > polls_before or self._died(),
            timeout=60,
        )
        assert not self._died(), self.log()
        return self

    def launch(self) -> BotProcess:
        """Start the process, without waiting for anything."""
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=log, stderr=log
        )
        log.close()
        return self

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
