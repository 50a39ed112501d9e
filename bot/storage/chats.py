"""Chats the bot serves: registration, language, activity, and the move to a supergroup."""

from __future__ import annotations

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from bot.storage.models import Account, Chat, Notification

LANGUAGES = ("en", "ru")


def language_for(language_code: str | None) -> str:
    """The bot's language closest to a Telegram user's `language_code`."""
    code = (language_code or "").split("-")[0].lower()
    return code if code in LANGUAGES else "en"


# The chat with its accounts (`Chat.accounts`, by name) in one query: most updates look at
# them, and a second statement cost as much as the first.
_WITH_ACCOUNTS = (
    select(Chat)
    .outerjoin(Chat.accounts)
    .options(contains_eager(Chat.accounts))
    .where(Chat.id == bindparam("chat_id"))
    .order_by(Account.name)
)


async def ensure_chat(
    session: AsyncSession, chat_id: int, chat_type: str, title: str | None, language: str
) -> Chat:
    """The chat's row, its accounts loaded, created on first contact in the language of
    whoever spoke first; committed, the read too (see below)."""
    chat = await _with_accounts(session, chat_id)
    if chat is None:
        try:
            chat = Chat(
                id=chat_id, type=chat_type, title=title, language=language, active=True, accounts=[]
            )
            session.add(chat)
            await session.commit()
        except IntegrityError:  # another update of the same chat registered it first
            await session.rollback()
            chat = await _with_accounts(session, chat_id)
    if chat.title != title or chat.type != chat_type:
        chat.title, chat.type = title, chat_type
    # Even a read: its connection goes back to the pool now, not when the update is done. A
    # /balance then holds none while SMSC answers it (seconds, at worst), and the chats that
    # wait for a slow SMSC do not keep the others waiting for the pool's few connections.
    await session.commit()
    return chat


async def _with_accounts(session: AsyncSession, chat_id: int) -> Chat | None:
    found = await session.scalars(_WITH_ACCOUNTS, {"chat_id": chat_id})
    return found.unique().one_or_none()


async def set_active(session: AsyncSession, chat_id: int, active: bool) -> None:
    await session.execute(update(Chat).where(Chat.id == chat_id).values(active=active))
    await session.commit()


async def migrate_chat(session: AsyncSession, old_id: int, new_id: int) -> None:
    """A group became a supergroup: its accounts, settings and pending alerts follow."""
    old = await session.get(Chat, old_id)
    if old is None:
        return
    # Read before ensure_chat: if the new chat's own first update registers it meanwhile, the
    # rollback there expires `old`.
    title, language = old.title, old.language
    new = await ensure_chat(session, new_id, "supergroup", title, language)
    new.language, new.active = language, True
    # Plain statements: the old chat's row object stays usable for the rest of this update.
    plain = {"synchronize_session": False}
    for table in (Account, Notification):
        await session.execute(
            update(table).where(table.chat_id == old_id).values(chat_id=new_id),
            execution_options=plain,
        )
    await session.execute(delete(Chat).where(Chat.id == old_id), execution_options=plain)
    await session.commit()
