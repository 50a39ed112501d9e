"""Chats the bot serves: registration, language, activity, and the move to a supergroup."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict, set_committed_value

from bot.storage.direct import Direct
from bot.storage.engine import upsert
from bot.storage.models import Account, Base, Chat, Notification

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
# The same as columns, for a held connection (bot.storage.direct): one trip to aiosqlite's
# thread, where a pooled session takes six. Most updates make this read and nothing else:
# through the pool it took about half the CPU of a /balance answered from the cache.
_CHATS, _ACCOUNTS = Chat.__table__, Account.__table__
_AS_COLUMNS = (
    select(*_CHATS.c, *_ACCOUNTS.c)
    .select_from(_CHATS.outerjoin(_ACCOUNTS))
    .where(_CHATS.c.id == bindparam("chat_id"))
    .order_by(_ACCOUNTS.c.name)
)
Model = TypeVar("Model", bound=Base)
# What a group's members set, which its supergroup keeps: every column of the chat but those
# naming the chat itself and its activity.
_SETTINGS = [
    column.key
    for column in _CHATS.c
    if column.key not in ("id", "type", "title", "active", "created_at")
]


async def ensure_chat(
    session: AsyncSession,
    chat_id: int,
    chat_type: str,
    title: str | None,
    language: str,
    reader: Direct | None = None,
) -> Chat:
    """The chat's row, its accounts loaded, created on first contact in the language of
    whoever spoke first; committed, the read too (see below). With a `reader`, the read goes
    through it and its rows become the session's objects as if it had loaded them."""
    chat = await _with_accounts(session, chat_id, reader)
    while chat is None:  # read again until found: the row can go (a migration) in between
        # Another update of the same chat may register it first: then this one changes nothing.
        values = {"id": chat_id, "type": chat_type, "title": title, "language": language}
        register = upsert(session.bind.dialect.name, Chat).values(values)
        await session.execute(register.on_conflict_do_nothing(index_elements=[Chat.id]))
        await session.commit()
        chat = await _with_accounts(session, chat_id, reader)
    if chat.title != title or chat.type != chat_type:
        chat.title, chat.type = title, chat_type
    # Even a read: its connection goes back to the pool now, not when the update is done. A
    # /balance then holds none while SMSC answers it (seconds, at worst), and the chats that
    # wait for a slow SMSC do not keep the others waiting for the pool's few connections.
    await session.commit()
    return chat


async def _with_accounts(session: AsyncSession, chat_id: int, reader: Direct | None) -> Chat | None:
    # A session that has loaded something already might hold these rows as objects: the ORM
    # then reads, and keeps the objects it has.
    if reader is None or session.identity_map:
        found = await session.scalars(_WITH_ACCOUNTS, {"chat_id": chat_id})
        return found.unique().one_or_none()
    rows = await reader.records(_AS_COLUMNS, {"chat_id": chat_id})
    if not rows:
        return None
    split = len(_CHATS.c)
    chat = _loaded(Chat, rows[0][:split])
    accounts = [_loaded(Account, row[split:]) for row in rows if row[split] is not None]
    set_committed_value(chat, "accounts", accounts)
    session.add(chat)  # its accounts too (the relationship's cascade)
    return chat


def _loaded(model: type[Model], values: list[Any]) -> Model:
    """An object of `model` from its table's row, as a query would have loaded it: values set
    as committed, with none of the change events of the model's constructor (which cost more
    than the read itself)."""
    instance = inspect(model).class_manager.new_instance()
    instance_dict(instance).update(zip(_keys(model), values, strict=True))
    make_transient_to_detached(instance)  # the key from its primary key; no attribute history
    return instance


@functools.cache
def _keys(model: type[Base]) -> list[str]:
    """The model's attribute names, in the order of its table's columns."""
    mapper = inspect(model)
    return [mapper.get_property_by_column(column).key for column in mapper.local_table.c]


async def deactivate(session: AsyncSession, chat_id: int) -> None:
    """The bot can no longer reach the chat (blocked, removed). It is active again through
    bot.alerting.reachable, which tells it what it missed."""
    await session.execute(update(Chat).where(Chat.id == chat_id).values(active=False))
    await session.commit()


async def migrate_chat(session: AsyncSession, old_id: int, new_id: int) -> None:
    """A group became a supergroup: its accounts, settings and pending alerts follow."""
    old = await session.get(Chat, old_id)
    if old is None:
        return
    # Read before ensure_chat: if the new chat's own first update registers it meanwhile, the
    # rollback there expires `old`.
    title, settings = old.title, {key: getattr(old, key) for key in _SETTINGS}
    new = await ensure_chat(session, new_id, "supergroup", title, settings["language"])
    for key, value in settings.items():
        setattr(new, key, value)
    new.active = True
    # Plain statements: the old chat's row object stays usable for the rest of this update.
    plain = {"synchronize_session": False}
    for table in (Account, Notification):
        await session.execute(
            update(table).where(table.chat_id == old_id).values(chat_id=new_id),
            execution_options=plain,
        )
    await session.execute(delete(Chat).where(Chat.id == old_id), execution_options=plain)
    await session.commit()
