"""Per-update context: one database session, the chat's record and language, the account and
chat services; and the /add dialog's expiry."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, User
from aiogram.utils.i18n import gettext as _

from bot.alerting.accounts import AccountService
from bot.alerting.chats import ChatService
from bot.storage.chats import ensure_chat, language_for
from bot.storage.engine import Session, Sessions
from bot.telegram import texts
from bot.telegram.i18n import CHAT_LANGUAGE

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
IDLE_SECONDS = 30 * 60  # an /add dialog this long without an answer has expired


class DbSessionMiddleware(BaseMiddleware):
    """One session per update, from the Dispatcher's `sessionmaker`."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        sessionmaker: Sessions = data["sessionmaker"]
        async with sessionmaker() as session:
            data["session"] = session
            return await handler(event, data)


class ChatMiddleware(BaseMiddleware):
    """Registers the chat on first contact and hands handlers its record, accounts and settings."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None:
            user: User | None = data.get("event_from_user")
            session: Session = data["session"]
            record = data["chat_record"] = await ensure_chat(
                session,
                chat.id,
                chat.type,
                chat.title,
                language_for(user.language_code if user else None),
                data["reader"],
            )
            data[CHAT_LANGUAGE] = record.language
            data["accounts"] = AccountService(
                session,
                data["box"],
                data["guard"],
                data["monitor"],
                data["settings"].check_interval_seconds,
                chat=record,
            )
            data["chats"] = ChatService(session, data["monitor"])
        return await handler(event, data)


class DialogExpiry(BaseMiddleware):
    """Ends a dialog idle for 30 minutes instead of taking the late answer as its next step;
    otherwise notes the time of this step. (A late password is deleted all the same, before:
    bot.telegram.handlers.add_rights.) At `saved_step` the account is saved already, and the
    user is told it stays."""

    def __init__(self, saved_step: str) -> None:
        self._saved_step = saved_step

    async def __call__(
        self,
        handler: Handler,
        event: Message | CallbackQuery,
        data: dict[str, Any],
    ) -> Any:
        state: FSMContext = data["state"]
        now = time.time()  # wall-clock time: another process may take the next step
        dialog = await state.get_data()
        if now - dialog.get("active", now) > IDLE_SECONDS:
            saved = await state.get_state() == self._saved_step
            await state.clear()
            if saved:
                text = " ".join(
                    (
                        _("This /add dialog expired after 30 minutes without an answer."),
                        texts.kept_account(dialog),
                    )
                )
            else:
                text = _(
                    "This /add dialog expired after 30 minutes without an answer. Nothing was "
                    "saved. Send /add to start again."
                )
            if isinstance(event, CallbackQuery):
                await event.answer()
                await event.message.answer(text)
            else:
                await event.answer(text)
            return None
        await state.update_data(active=now)
        return await handler(event, data)
