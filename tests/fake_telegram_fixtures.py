"""The fake Bot API's tests' token, chats and keyboards, and their fixtures: `fake`, a
FakeTelegram, and `bot`, a real aiogram Bot talking to it over HTTP. Not a plugin for every
test, as the handlers' tests have a `bot` of their own (tests/handler_fixtures.py):
tests/test_fake_telegram*.py take these two fixtures into their own namespace."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from tests.fake_telegram import FakeTelegram

TOKEN = "42:TEST"
PRIVATE = 501
GROUP = -4001
SUPERGROUP = -1001234


class PlainHttpSession(AiohttpSession):
    """aiogram's session minus the 250 ms wait for TLS connections to close (plain HTTP)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def keyboard(*data: str) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=d.title(), callback_data=d) for d in data]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


@pytest.fixture
def fake() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[Bot]:
    session = PlainHttpSession(api=TelegramAPIServer.from_base(fake.url))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield bot
    await bot.session.close()
