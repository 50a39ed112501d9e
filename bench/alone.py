"""aiogram alone, in the bench's conditions: what the library itself costs for a /balance burst
and for sends at the outbox's pace, with no database and none of the bot's code. The bot's own
figures are read against these, taken on the same machine in the same run (its speed varies
from hour to hour by a third).

python -m bench.alone poll URL          # a bare bot polling URL, /balance answered with a text
python -m bench.alone send URL COUNT    # COUNT alerts sent at the outbox's pace; prints CPU s
python -m bench.alone mark URL COUNT    # ... each answer marked sent in SQLite, as it commits
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType

import aiosqlite
from aiogram import Bot, Dispatcher, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message

from bench import proc
from bench.harness import BotRun
from bot.alerting.pacing import MemoryPacer
from tests.bot_process import TOKEN
from tests.fake_telegram import FakeTelegram

# As long as the bot's answers: five accounts a chat, an alert with two buttons.
BALANCES = "\n".join(f"<b>acct-{i}</b> (user0000{i}): 1000.00 RUB, ≈ 30 days" for i in range(5))
ALERT = "⚠️ <b>acct-1</b> (user00001): 50.00 RUB, under the threshold 100.00 RUB."
BUTTONS = InlineKeyboardMarkup(
    inline_keyboard=[
        [
            InlineKeyboardButton(text="Acknowledge", callback_data="ack:1"),
            InlineKeyboardButton(text="Snooze", callback_data="snooze:1"),
        ]
    ]
)
CHAT_BASE = 10_000_000

router = Router(name=__name__)


@router.message(Command("balance"))
async def balance(message: Message) -> None:
    await message.answer(BALANCES, parse_mode="HTML")


def _bot(url: str) -> Bot:
    return Bot(TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(url)))


async def poll(url: str) -> None:
    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    bot = _bot(url)
    # No signal handling: the bench ends it with SIGTERM, quietly.
    await dispatcher.start_polling(
        bot, allowed_updates=dispatcher.resolve_used_update_types(), handle_signals=False
    )


@asynccontextmanager
async def _sent_table(count: int) -> AsyncIterator[aiosqlite.Connection]:
    """An SQLite file with a row for each of `count` alerts, on one connection in autocommit
    (each statement its own transaction), as the outbox holds its own."""
    with tempfile.TemporaryDirectory(prefix="smsc-alone-") as tmp:
        async with aiosqlite.connect(Path(tmp) / "sent.db", isolation_level=None) as db:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("CREATE TABLE sent (id INTEGER PRIMARY KEY, message_id INTEGER)")
            await db.executemany("INSERT INTO sent (id) VALUES (?)", [(i,) for i in range(count)])
            yield db


async def send(url: str, count: int, *, marked: bool = False) -> float:
    """CPU seconds for `count` alerts to as many chats, each waiting for its place from the
    outbox's own pacer (so woken as the outbox's sends are). `marked`: each answer is then
    marked sent in SQLite, its own commit (as the outbox marks them: what keeps a crash from
    sending an alert twice)."""
    pacer = MemoryPacer()
    async with AsyncExitStack() as stack:
        bot = await stack.enter_async_context(_bot(url))
        db = await stack.enter_async_context(_sent_table(count)) if marked else None
        await bot.get_me()  # the session's connection made before counting

        async def one(index: int) -> None:
            await asyncio.sleep(await pacer.place())
            message = await bot.send_message(
                CHAT_BASE + index, ALERT, parse_mode="HTML", reply_markup=BUTTONS
            )
            if db is not None:
                mark = "UPDATE sent SET message_id = ? WHERE id = ?"
                await db.execute(mark, (message.message_id, index))

        start = time.process_time()
        await asyncio.gather(*(one(i) for i in range(count)))
        return time.process_time() - start


class Alone:
    """A fake Bot API with a bare aiogram bot polling it; `with` starts and stops both. Has
    what bench.scenarios.burst asks of a BotRun."""

    wait = BotRun.wait  # polls as the bot's runs are polled

    def __init__(self) -> None:
        self.telegram = FakeTelegram()
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Alone:
        self.telegram.start()
        command = [sys.executable, "-m", "bench.alone", "poll", self.telegram.url]
        self._process = subprocess.Popen(command)
        # Started once it polls: importing aiogram takes seconds.
        self.wait(lambda: self.telegram.calls_of("getUpdates"), timeout=60, what="aiogram start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
        self.telegram.stop()

    def check_alive(self) -> None:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError("the bare aiogram bot died")

    def sample(self) -> proc.Sample:
        assert self._process is not None
        return proc.sample(self._process.pid)


def sends_cpu(count: int, *, marked: bool = False) -> float:
    """CPU seconds per alert sent by aiogram alone at the outbox's pace (see `send`)."""
    with FakeTelegram() as telegram:
        mode = "mark" if marked else "send"
        command = [sys.executable, "-m", "bench.alone", mode, telegram.url, str(count)]
        done = subprocess.run(command, capture_output=True, check=True, text=True, timeout=600)
    return float(done.stdout) / count


if __name__ == "__main__":
    mode, url, *rest = sys.argv[1:]
    if mode == "poll":
        asyncio.run(poll(url))
    else:
        print(asyncio.run(send(url, int(rest[0]), marked=mode == "mark")))
