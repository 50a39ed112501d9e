"""Access rules, applied to whole routers."""

from __future__ import annotations

from aiogram import Bot
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.filters import BaseFilter
from aiogram.types import CallbackQuery, Message

ADMIN_STATUSES = {ChatMemberStatus.CREATOR, ChatMemberStatus.ADMINISTRATOR}


async def is_chat_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    member = await bot.get_chat_member(chat_id, user_id)
    return member.status in ADMIN_STATUSES


class ChatAdmin(BaseFilter):
    """Passes in private chats, and in groups for the creator and administrators,
    including an anonymous administrator posting as the group itself."""

    async def __call__(self, event: Message | CallbackQuery, bot: Bot) -> bool:
        message = event if isinstance(event, Message) else event.message
        if message is None:
            return False
        chat = message.chat
        if chat.type == ChatType.PRIVATE:
            return True
        if isinstance(event, Message) and event.sender_chat is not None:
            return event.sender_chat.id == chat.id
        return await is_chat_admin(bot, chat.id, event.from_user.id)


class DialogInput(BaseFilter):
    """A dialog answer: any message in private, a reply to the bot in groups (privacy mode
    shows the bot nothing else there, and without it an unrelated message must not count)."""

    async def __call__(self, message: Message, bot: Bot) -> bool:
        if message.chat.type == ChatType.PRIVATE:
            return True
        reply = message.reply_to_message
        return reply is not None and reply.from_user is not None and reply.from_user.id == bot.id
