"""Access rules, applied to whole routers, and the command filter the handlers read
arguments through."""

from __future__ import annotations

import unicodedata
from dataclasses import replace

from aiogram import Bot, Router, filters
from aiogram.enums import ChatType
from aiogram.filters import BaseFilter, CommandObject
from aiogram.filters.callback_data import CallbackQueryFilter
from aiogram.types import CallbackQuery, Message

from bot.telegram.admins import AdminRights


class ChatAdmin(BaseFilter):
    """Passes in private chats, and in groups for the creator and administrators,
    including an anonymous administrator posting as the group itself."""

    async def __call__(
        self, event: Message | CallbackQuery, bot: Bot, admin_rights: AdminRights
    ) -> bool:
        message = event if isinstance(event, Message) else event.message
        if message is None:
            return False
        chat = message.chat
        if chat.type == ChatType.PRIVATE:
            return True
        if isinstance(event, Message) and event.sender_chat is not None:
            return event.sender_chat.id == chat.id
        return await admin_rights.is_admin(bot, chat.id, event.from_user.id)


class RouterTakes(BaseFilter):
    """Cheap, asks Telegram nothing: in a group, only a command one of the router's handlers
    takes, one of its buttons, or a step of a dialog under way. Placed before ChatAdmin so that
    ordinary messages, other bots' commands and readers' buttons never cost an admin lookup.
    In private chats everything passes: there ChatAdmin costs nothing either."""

    def __init__(self, router: Router) -> None:
        # Read once, after the router's handlers and sub-routers are all registered.
        self.commands: set[str] = set()
        self.prefixes: set[str] = set()
        for part in router.chain_tail:
            for handler in [*part.message.handlers, *part.callback_query.handlers]:
                for rule in handler.filters or []:
                    if isinstance(rule.callback, filters.Command):
                        names = (c for c in rule.callback.commands if isinstance(c, str))
                        self.commands.update(name.lower() for name in names)
                    elif isinstance(rule.callback, CallbackQueryFilter):
                        self.prefixes.add(rule.callback.callback_data.__prefix__)

    async def __call__(
        self, event: Message | CallbackQuery, bot: Bot, raw_state: str | None = None
    ) -> bool:
        if isinstance(event, CallbackQuery):
            return raw_state is not None or (event.data or "").split(":", 1)[0] in self.prefixes
        if event.chat.type == ChatType.PRIVATE:
            return True
        if raw_state is not None and await DialogInput()(event, bot):
            return True  # a dialog step: anything else from the user is not one
        text = event.text or event.caption or ""
        if not text.startswith("/"):
            return False
        name, _at, mention = text.split(maxsplit=1)[0][1:].partition("@")
        if mention and mention.lower() != ((await bot.me()).username or "").lower():
            return False  # another bot's command
        return name.lower() in self.commands


class DialogInput(BaseFilter):
    """A dialog answer: any message in private, a reply to the bot in groups (privacy mode
    shows the bot nothing else there, and without it an unrelated message must not count)."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        if message.chat.type == ChatType.PRIVATE:
            return True
        reply = message.reply_to_message
        return reply is not None and reply.from_user is not None and reply.from_user.id == bot.id


class Command(filters.Command):
    """aiogram's, with arguments free of format characters (Unicode category Cf): zero-width
    spaces, joiners and LTR/RTL marks that keyboards and copied text leave in unseen. In a name
    they made "shop\u200b" another account than the listed shop ("No account named shop
    here"); no argument of a command (names, amounts, zones, @users) needs one."""

    @classmethod
    def extract_command(cls, text: str) -> CommandObject:
        command = super().extract_command(text)
        if command.args is None:
            return command
        args = "".join(c for c in command.args if unicodedata.category(c) != "Cf").strip()
        return replace(command, args=args or None)
