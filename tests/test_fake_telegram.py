"""Tests of the fake Telegram Bot API server, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
import zlib
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import Command
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BufferedInputFile,
    CallbackQuery,
    ChatMemberUpdated,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import web

from tests.fake_telegram import (
    ANONYMOUS_ADMIN_ID,
    BOT_ID,
    BOT_USERNAME,
    SECRET_HEADER,
    FakeTelegram,
)
from tests.test_e2e_observability import free_port

TOKEN = "42:TEST"
PRIVATE = 501
GROUP = -4001
SUPERGROUP = -1001234


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


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


async def test_send_edit_delete_and_transcript(fake: FakeTelegram, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.can_read_all_group_messages) == (BOT_ID, BOT_USERNAME, False)
    assert fake.message(PRIVATE, "/balance") == 1

    sent = await bot.send_message(
        PRIVATE,
        "<b>Balance</b> 1 &lt; 2",
        reply_markup=keyboard("refresh"),
        disable_notification=True,
    )
    assert sent.message_id == 2  # one counter per chat, shared with the user's messages
    assert sent.text == "Balance 1 < 2"
    assert sent.entities is not None and sent.entities[0].type == "bold"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump() == keyboard("refresh").model_dump()
    [record] = fake.sent(PRIVATE)
    assert record["disable_notification"] is True
    assert record["reply_markup"] == {
        "inline_keyboard": [[{"text": "Refresh", "callback_data": "refresh"}]]
    }
    call = fake.calls_of("sendMessage", PRIVATE)[0]
    assert call.params["chat_id"] == PRIVATE and call.params["text"] == "<b>Balance</b> 1 &lt; 2"

    edited = await bot.edit_message_text(
        "Balance 2", chat_id=PRIVATE, message_id=2, reply_markup=keyboard("refresh")
    )
    assert isinstance(edited, Message) and edited.edit_date is not None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Balance 2", chat_id=PRIVATE, message_id=2, reply_markup=keyboard("refresh")
        )
    await bot.edit_message_reply_markup(chat_id=PRIVATE, message_id=2)
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=PRIVATE, message_id=1)
    assert [c.method for c in fake.edits(PRIVATE)] == ["editMessageText", "editMessageReplyMarkup"]
    assert (
        fake.sent(PRIVATE)[0]["text"] == "Balance 2"
        and fake.sent(PRIVATE)[0]["reply_markup"] is None
    )

    fake.set_can_delete(PRIVATE, False)
    with pytest.raises(TelegramBadRequest, match="message can't be deleted"):
        await bot.delete_message(PRIVATE, 2)
    fake.set_can_delete(PRIVATE, True)
    assert await bot.delete_message(PRIVATE, 2)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(PRIVATE, 2)
    assert fake.deleted(PRIVATE) == [2]
    assert fake.transcript(PRIVATE) == [
        "Ann: /balance",
        "bot: Balance 1 < 2 [Refresh]",
        "bot (edited): Balance 2 [Refresh]",
        "bot (edited): Balance 2",
        "[deleted message 2]",
    ]


async def test_telegram_validation(fake: FakeTelegram, bot: Bot) -> None:
    for text, error in [
        ("a < b", "can't parse entities: Unsupported start tag"),
        ("<b>open", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", "Unexpected end tag"),
        ("x" * 4097, "message is too long"),
        ("  ", "message text is empty"),
    ]:
        with pytest.raises(TelegramBadRequest, match=error):
            await bot.send_message(PRIVATE, text)
    assert (await bot.send_message(PRIVATE, "a < b", parse_mode=None)).text == "a < b"
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(PRIVATE, "x", reply_markup=keyboard("d" * 65))
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(PRIVATE, "x", reply_to_message_id=99)
    question = fake.message(PRIVATE, "why?")
    answer = await bot.send_message(PRIVATE, "because", reply_to_message_id=question)
    assert answer.reply_to_message is not None and answer.reply_to_message.text == "why?"


async def test_photo_and_document_uploads(fake: FakeTelegram, bot: Bot) -> None:
    image = png(3, 2)
    photo = await bot.send_photo(
        PRIVATE, BufferedInputFile(image, "chart.png"), caption="<i>Chart</i>"
    )
    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (3, 2)
    assert photo.caption == "Chart"
    assert fake.sent(PRIVATE)[0]["photo_bytes"] == image
    assert fake.calls_of("sendPhoto")[0].params["photo"] == image
    again = await bot.send_photo(PRIVATE, photo.photo[-1].file_id)
    assert again.photo is not None and again.photo[-1].width == 3
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(PRIVATE, BufferedInputFile(b"not an image", "x.png"))

    document = await bot.send_document(PRIVATE, BufferedInputFile(b"a;b\n1;2\n", "report.csv"))
    assert document.document is not None and document.document.file_name == "report.csv"
    assert fake.sent(PRIVATE)[-1]["document_bytes"] == b"a;b\n1;2\n"
    assert fake.transcript(PRIVATE) == [
        "bot: [photo] Chart",
        "bot: [photo]",
        "bot: [document report.csv]",
    ]


async def test_errors_map_to_aiogram_exceptions(fake: FakeTelegram, bot: Bot) -> None:
    fake.fail("sendMessage", status=429, retry_after=3)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(PRIVATE, "hi")
    assert retry.value.retry_after == 3
    await bot.send_message(PRIVATE, "hi")  # the fault was one-off

    fake.fail("sendMessage", status=502, chat_id=GROUP, times=2)
    await bot.send_message(PRIVATE, "other chats are not affected")
    for _ in range(2):
        with pytest.raises(TelegramServerError):
            await bot.send_message(GROUP, "hi")
    await bot.send_message(GROUP, "hi")

    fake.block(PRIVATE)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(PRIVATE, "hi")
    fake.block(GROUP)
    with pytest.raises(TelegramForbiddenError, match="kicked from the group chat"):
        await bot.send_message(GROUP, "hi")

    fake.message(-77, "/start", chat_type="group", title="Ops")
    fake.migrate(-77, SUPERGROUP)
    with pytest.raises(TelegramMigrateToChat) as migrated:
        await bot.send_message(-77, "hi")
    assert migrated.value.migrate_to_chat_id == SUPERGROUP
    moved = await bot.send_message(SUPERGROUP, "hi")
    assert (moved.chat.type, moved.chat.title) == ("supergroup", "Ops")
    updates = await bot.get_updates()
    assert [u.message.migrate_to_chat_id for u in updates if u.message] == [None, SUPERGROUP, None]
    assert updates[-1].message is not None and updates[-1].message.migrate_from_chat_id == -77

    async with aiohttp.ClientSession() as http:
        response = await http.post(
            f"{fake.url}/bot{TOKEN}/sendCarrierPigeon", data={"chat_id": "1"}
        )
        assert response.status == 404
        assert await response.json() == {
            "ok": False,
            "error_code": 404,
            "description": "Not Found: method not found",
        }
    assert fake.calls_of("sendMessage", GROUP)[0].error == "502 Bad Gateway"
    assert fake.server_errors == []


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


async def test_members_chats_and_commands(fake: FakeTelegram, bot: Bot) -> None:
    fake.set_member_status(GROUP, 10, "creator")
    fake.set_member_status(GROUP, 11, "administrator")
    fake.set_can_delete(GROUP, False)
    assert (await bot.get_chat_member(GROUP, 10)).status == "creator"
    assert (await bot.get_chat_member(GROUP, 12)).status == "member"
    admins = await bot.get_chat_administrators(GROUP)
    assert [(m.user.id, m.status) for m in admins] == [(10, "creator"), (11, "administrator")]
    assert getattr(admins[1], "can_delete_messages", None) is False
    with pytest.raises(TelegramBadRequest, match="no administrators in the private chat"):
        await bot.get_chat_administrators(PRIVATE)

    fake.my_chat_member(SUPERGROUP, "administrator", chat_type="supergroup", title="Ops")
    assert (await bot.get_chat_member(SUPERGROUP, BOT_ID)).status == "administrator"
    fake.message(SUPERGROUP, "hi", thread_id=5)
    chat = await bot.get_chat(SUPERGROUP)
    assert (chat.type, chat.title, chat.is_forum) == ("supergroup", "Ops", True)

    commands = [BotCommand(command="balance", description="Show balances")]
    scope = BotCommandScopeAllGroupChats()
    assert await bot.set_my_commands(commands, scope=scope, language_code="ru")
    got = await bot.get_my_commands(scope=scope, language_code="ru")
    assert [c.model_dump() for c in got] == [c.model_dump() for c in commands]
    assert await bot.get_my_commands() == []
    assert fake.commands({"type": "all_group_chats"}, "ru") == [
        {"command": "balance", "description": "Show balances"}
    ]
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


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
