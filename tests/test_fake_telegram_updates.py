"""Tests of the fake Telegram Bot API server's updates, driven by a real aiogram Bot over HTTP:
getUpdates, a Dispatcher polling, `wait_for` from another thread and webhook delivery."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.exceptions import TelegramConflictError
from aiogram.filters import Command
from aiogram.types import CallbackQuery, ChatMemberUpdated, Message
from aiohttp import web

from tests import fake_telegram_fixtures
from tests.e2e_helpers import free_port
from tests.fake_telegram import ANONYMOUS_ADMIN_ID, SECRET_HEADER, FakeTelegram
from tests.fake_telegram_fixtures import GROUP, PRIVATE, SUPERGROUP, keyboard

# The fake server and an aiogram Bot on it: fixtures of these tests only (see
# tests/fake_telegram_fixtures.py).
fake = fake_telegram_fixtures.fake
bot = fake_telegram_fixtures.bot


async def test_get_updates_long_poll_offset_and_filters(fake: FakeTelegram, bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == []
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    fake.message(PRIVATE, "hello")
    [update] = await poll
    assert time.monotonic() - started < 1  # woken by the update, not by the timeout
    assert update.message is not None and update.message.text == "hello"

    for text in ("a", "b", "c"):
        fake.message(PRIVATE, text)
    batch = await bot.get_updates(offset=update.update_id + 1, limit=2)
    assert [u.message.text for u in batch if u.message] == ["a", "b"]
    assert fake.updates_pending == 1
    rest = await bot.get_updates(offset=batch[-1].update_id + 1, timeout=1)
    assert [u.message.text for u in rest if u.message] == ["c"]
    assert fake.updates_pending == 0

    fake.my_chat_member(GROUP, "member")
    fake.message(PRIVATE, "d")
    only = await bot.get_updates(offset=rest[-1].update_id + 1, allowed_updates=["message"])
    assert [u.event_type for u in only] == ["message"]
    assert fake.updates_pending == 0

    older = asyncio.create_task(bot.get_updates(offset=only[-1].update_id + 1, timeout=5))
    await asyncio.sleep(0.05)
    assert await bot.get_updates(offset=only[-1].update_id + 1) == []
    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates request"):
        await older


async def test_dispatcher_polls_and_handles_updates(fake: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    membership: list[str] = []
    seen: list[tuple[int | None, int | None, int | None]] = []  # from, sender chat, replied

    @dp.message(Command("balance"))
    async def balance(message: Message) -> None:
        reply = message.reply_to_message
        sender_chat = message.sender_chat.id if message.sender_chat else None
        user = message.from_user.id if message.from_user else None
        seen.append((user, sender_chat, reply.message_id if reply else None))
        await message.answer("Balance: 100", reply_markup=keyboard("refresh"))

    @dp.callback_query(F.data == "refresh")
    async def refresh(query: CallbackQuery) -> None:
        await query.answer("Updated")
        assert isinstance(query.message, Message)
        await query.message.edit_text("Balance: 99", reply_markup=keyboard("refresh"))

    @dp.my_chat_member()
    async def member(event: ChatMemberUpdated) -> None:
        membership.append(event.new_chat_member.status)

    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False, polling_timeout=1)
    )
    try:
        fake.message(PRIVATE, "/balance")
        [answer] = await fake.await_for(lambda: fake.sent(PRIVATE), timeout=5)
        fake.callback(PRIVATE, answer["message_id"], "refresh")
        await fake.await_for(lambda: fake.edits(PRIVATE), timeout=5)
        assert fake.calls_of("answerCallbackQuery")[0].params["text"] == "Updated"

        fake.my_chat_member(SUPERGROUP, "administrator", chat_type="supergroup")
        fake.message(SUPERGROUP, "/balance@smsc_test_bot", thread_id=7, sender_chat_id=SUPERGROUP)
        topic = await fake.await_for(lambda: fake.sent(SUPERGROUP), timeout=5)
        assert topic[0]["message_thread_id"] == 7
        fake.message(SUPERGROUP, "/balance", reply_to_message_id=topic[0]["message_id"])
        await fake.await_for(lambda: len(fake.sent(SUPERGROUP)) == 2, timeout=5)
    finally:
        await dp.stop_polling()
        await polling
    assert membership == ["administrator"]
    assert seen == [
        (PRIVATE, None, None),
        (ANONYMOUS_ADMIN_ID, SUPERGROUP, None),
        (1, None, topic[0]["message_id"]),
    ]
    assert fake.transcript(SUPERGROUP)[:3] == [
        "[bot status: left -> administrator]",
        "Group -1001234: /balance@smsc_test_bot",
        "bot: Balance: 100 [Refresh]",
    ]
    assert fake.updates_pending == 0
    assert fake.server_errors == []


def test_wait_for_from_another_thread(fake: FakeTelegram) -> None:
    threading.Timer(0.05, fake.message, args=(PRIVATE, "late")).start()
    assert fake.wait_for(lambda: fake.updates_pending, timeout=5) == 1
    with pytest.raises(AssertionError, match=f"{PRIVATE}: Ann: late"):
        fake.wait_for(lambda: fake.sent(PRIVATE), timeout=0.1)


@contextlib.asynccontextmanager
async def replica(status: int, seen: list[tuple[str, int, str | None]]) -> AsyncIterator[str]:
    """A webhook endpoint answering `status`, noting (its address, update_id, secret)."""

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        seen.append((address, update["update_id"], request.headers.get(SECRET_HEADER)))
        return web.json_response({}, status=status)

    app = web.Application()
    app.router.add_post("/tg/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    address = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield address
    finally:
        await runner.cleanup()


async def test_webhook_delivers_round_robin_and_retries_at_the_next_address(
    fake: FakeTelegram, bot: Bot
) -> None:
    await bot.set_webhook(
        "https://bot.example.com/tg/hook", secret_token="s3cret", allowed_updates=["message"]
    )
    with pytest.raises(TelegramConflictError, match="while webhook is active"):
        await bot.get_updates()
    seen: list[tuple[str, int, str | None]] = []
    dead = f"http://127.0.0.1:{free_port()}"
    async with replica(200, seen) as first, replica(200, seen) as second:
        fake.deliver_to(first, dead, second)
        ids = [fake.message(PRIVATE, f"m{n}") for n in range(6)]
        fake.my_chat_member(GROUP, "member")  # not among the allowed updates: never sent
        await fake.await_for(lambda: fake.updates_pending == 0, timeout=5)
    assert sorted(update_id for _, update_id, _ in seen) == [1, 2, 3, 4, 5, 6] == ids
    assert {address for address, _, _ in seen} == {first, second}
    assert {secret for _, _, secret in seen} == {"s3cret"}
    refused = [d for d in fake.deliveries if d.error is not None]
    assert refused and {(d.address, d.error) for d in refused} == {(dead, "Connection refused")}
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://bot.example.com/tg/hook", 0)
    assert info.last_error_message == "Connection refused" and info.last_error_date is not None

    async with replica(500, seen) as failing:
        fake.deliver_to(failing)
        fake.message(PRIVATE, "waits")
        await fake.await_for(lambda: len(fake.deliveries) > len(refused) + 6 + 1, timeout=5)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert (
            info.last_error_message == "Wrong response from the webhook: 500 Internal Server Error"
        )

    await bot.delete_webhook()  # the update under delivery goes back to the queue
    [update] = await bot.get_updates(timeout=5)
    assert update.message is not None and update.message.text == "waits"
    assert fake.webhook is None and fake.server_errors == []
