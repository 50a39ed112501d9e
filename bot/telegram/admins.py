"""Who administers a group, and whether anonymously: getChatMember answers, remembered for a
minute.

A group where admins change settings often, or a hostile member, must not spend the bot's
request budget shared by every chat; and a demotion must not go unnoticed for long, hence the
short lifetime, and `forget` when a chat_member update says someone's rights changed.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
)
from aiogram.types import ChatMemberAdministrator, ChatMemberOwner

Key = tuple[int, int]  # (chat_id, user_id)


class Role(Enum):
    MEMBER = "member"  # or no one there at all
    ADMIN = "admin"
    # "Remain anonymous": their messages come from the group itself, not from them.
    ANONYMOUS_ADMIN = "anonymous admin"
    # Telegram refuses to say (403): the bot was removed from the chat. No admin either, but
    # the user is told to add the bot back rather than that they are no admin.
    BOT_REMOVED = "bot removed"


ADMINS = (Role.ADMIN, Role.ANONYMOUS_ADMIN)


class AdminRights:
    def __init__(
        self,
        *,
        ttl: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._known: OrderedDict[Key, tuple[float, Role]] = OrderedDict()  # oldest first
        # Lookups under way: a burst of commands from one admin waits for one answer.
        self._pending: dict[Key, asyncio.Future[Role]] = {}

    async def is_admin(self, bot: Bot, chat_id: int, user_id: int, *, fresh: bool = False) -> bool:
        """Whether the user is the chat's creator or an administrator; `fresh` asks Telegram
        even when a recent answer is known (before writing something that matters)."""
        return await self.role(bot, chat_id, user_id, fresh=fresh) in ADMINS

    async def role(self, bot: Bot, chat_id: int, user_id: int, *, fresh: bool = False) -> Role:
        key = (chat_id, user_id)
        if not fresh:
            known = self._known.get(key)
            if known is not None and self._clock() < known[0]:
                return known[1]
            if key in self._pending:
                return await asyncio.shield(self._pending[key])
        future = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            role = await self._ask(bot, chat_id, user_id)
        except Exception as error:
            future.set_exception(error)
            future.exception()  # marked as seen: there may be no one else waiting
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            # Not remembered: an admin who adds the bot back is not refused for a minute.
            if role is not Role.BOT_REMOVED:
                self._remember(key, role)
            future.set_result(role)
            return role
        finally:
            if self._pending.get(key) is future:
                del self._pending[key]

    def forget(self, chat_id: int, user_id: int) -> None:
        self._known.pop((chat_id, user_id), None)

    @staticmethod
    async def _ask(bot: Bot, chat_id: int, user_id: int) -> Role:
        try:
            member = await bot.get_chat_member(chat_id, user_id)
        except TelegramForbiddenError:
            return Role.BOT_REMOVED
        except (TelegramBadRequest, TelegramMigrateToChat):
            # No such chat or user, or the group became a supergroup under a new id: no one
            # administers this id now.
            return Role.MEMBER
        if not isinstance(member, ChatMemberOwner | ChatMemberAdministrator):
            return Role.MEMBER
        return Role.ANONYMOUS_ADMIN if member.is_anonymous else Role.ADMIN

    def _remember(self, key: Key, role: Role) -> None:
        self._known.pop(key, None)
        self._known[key] = (self._clock() + self._ttl, role)
        # All entries live equally long, so the oldest inserted expires first: drop it.
        while len(self._known) > self._max_entries:
            self._known.popitem(last=False)
