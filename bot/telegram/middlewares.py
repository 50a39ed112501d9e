"""Per-update context: one database session, the chat's record, and the account service."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alerting.accounts import AccountService
from bot.storage.chats import ensure_chat, language_for

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class DbSessionMiddleware(BaseMiddleware):
    """One session per update, from the Dispatcher's `sessionmaker`."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        sessionmaker: async_sessionmaker[AsyncSession] = data["sessionmaker"]
        async with sessionmaker() as session:
            data["session"] = session
            return await handler(event, data)


class ChatMiddleware(BaseMiddleware):
    """Registers the chat on first contact and hands handlers its record and accounts."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None:
            user: User | None = data.get("event_from_user")
            session: AsyncSession = data["session"]
            data["chat_record"] = await ensure_chat(
                session,
                chat.id,
                chat.type,
                chat.title,
                language_for(user.language_code if user else None),
            )
            data["accounts"] = AccountService(
                session,
                data["box"],
                data["guard"],
                data["monitor"],
                data["settings"].check_interval_seconds,
            )
        return await handler(event, data)
