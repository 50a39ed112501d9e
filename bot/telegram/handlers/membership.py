"""The bot added to or removed from a chat, a group becoming a supergroup, and members' rights
changing."""

from __future__ import annotations

import logging

from aiogram import F, Router
from aiogram.filters import JOIN_TRANSITION, LEAVE_TRANSITION, ChatMemberUpdatedFilter, MagicData
from aiogram.types import ChatMemberUpdated, Message

from bot.alerting.chats import ChatService
from bot.alerting.outbox import Outbox
from bot.storage.chats import deactivate, migrate_chat
from bot.storage.engine import Session
from bot.telegram.admins import AdminRights

log = logging.getLogger(__name__)
router = Router(name=__name__)


@router.my_chat_member(ChatMemberUpdatedFilter(LEAVE_TRANSITION))
async def removed(event: ChatMemberUpdated, session: Session) -> None:
    await deactivate(session, event.chat.id)
    log.info("chat inactive chat_id=%s reason=bot removed or blocked", event.chat.id)


@router.my_chat_member(ChatMemberUpdatedFilter(JOIN_TRANSITION))
async def added(event: ChatMemberUpdated, chats: ChatService, outbox: Outbox | None) -> None:
    # Unblocked or added back: what the chat missed meanwhile is said again.
    if await chats.reactivate(event.chat.id) and outbox is not None:
        outbox.wake()
    log.info("chat active chat_id=%s", event.chat.id)


# Every message is asked this. aiogram runs a filter that is no coroutine, a bare F among
# them, in a thread of its pool: a hop per message, the GIL passed back and forth.
@router.message(MagicData(F.event.migrate_to_chat_id))
async def migrated(message: Message, session: Session) -> None:
    await migrate_chat(session, message.chat.id, message.migrate_to_chat_id)
    log.info("chat migrated from=%s to=%s", message.chat.id, message.migrate_to_chat_id)


@router.chat_member()
async def rights_changed(event: ChatMemberUpdated, admin_rights: AdminRights) -> None:
    # Telegram sends these only where the bot is an administrator: elsewhere the cached
    # answer simply expires.
    admin_rights.forget(event.chat.id, event.new_chat_member.user.id)
