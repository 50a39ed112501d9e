"""The real bot (`python -m bot`) as a child process, wired to the loopback fakes: polling,
or in webhook mode (`webhook=True`) with the fake Bot API delivering to its HTTP port;
`replica()` makes another process of the same bot (same key, database, Redis, webhook)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests.e2e_helpers import free_port
from tests.fake_smsc import FakeSmsc
from tests.fake_telegram import FakeTelegram

TOKEN = "7000001:TEST-token"
# The public URL Telegram is told: the fake delivers to the replica's own address instead.
WEBHOOK_URL = "https://bot.example.com/tg/hook"
WEBHOOK_SECRET = "test-webhook_S3cret"


class BotProcess:
    def __init__(
        self,
        telegram: FakeTelegram,
        smsc: FakeSmsc,
        data_dir: Path,
        *,
        webhook: bool = False,
        **settings: str,
    ) -> None:
        """`settings` go into the environment (DATABASE_URL, REDIS_URL, ...); `webhook` adds
        WEBHOOK_URL, WEBHOOK_SECRET and a free HTTP_PORT unless given."""
        self.telegram = telegram
        self.smsc = smsc
        self.log_path = data_dir / "bot.log"
        if webhook:
            settings = {
                "WEBHOOK_URL": WEBHOOK_URL,
                "WEBHOOK_SECRET": WEBHOOK_SECRET,
                "HTTP_PORT": str(free_port()),
                **settings,
            }
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

    @property
    def webhook(self) -> bool:
        return bool(self.env.get("WEBHOOK_URL"))

    @property
    def http(self) -> str | None:
        """The bot's HTTP server (/healthz, /metrics, the webhook), if HTTP_PORT is set."""
        port = self.env.get("HTTP_PORT")
        return f"http://127.0.0.1:{port}" if port else None

    def replica(self, data_dir: Path) -> BotProcess:
        """Another process of the same bot: the same settings (key, database, Redis,
        webhook), its own folder, log and HTTP port."""
        settings = {k: v for k, v in self.env.items() if k != "HTTP_PORT"}
        if self.http is not None:
            settings["HTTP_PORT"] = str(free_port())
        return BotProcess(self.telegram, self.smsc, data_dir, **settings)

    def start(self) -> BotProcess:
        """Launch, and wait until the bot polls Telegram, or in webhook mode until it serves
        updates: it asks getWebhookInfo once it does, after its setWebhook."""
        before = self._started()
        if self.webhook:
            assert self.http is not None, "webhook mode needs HTTP_PORT"
            self.telegram.add_delivery_address(self.http)
        self.launch()
        self.telegram.wait_for(lambda: self._started() > before or self._died(), timeout=60)
        assert not self._died(), self.log()
        return self

    def _started(self) -> int:
        """Polls made (answered or not), or webhooks set and followed by getWebhookInfo."""
        if not self.webhook:
            return len(self.telegram.calls_of("getUpdates"))
        infos = self.telegram.calls_of("getWebhookInfo")
        return len([
            call
            for call in self.telegram.calls_of("setWebhook")
            if call.error is None and any(info.time > call.time for info in infos)
        ])  # fmt: skip

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
