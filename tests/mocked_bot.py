"""A Bot whose session records every request and answers like Telegram, without a network.

After aiogram's own tests/mocked_bot.py (not shipped in the wheel): results go through the real
`check_response`, so queued errors raise the same exceptions Telegram's replies would.
"""

from __future__ import annotations

import itertools
from collections import defaultdict, deque
from datetime import UTC, datetime
from typing import Any

from aiogram import Bot
from aiogram.client.session.base import BaseSession
from aiogram.exceptions import TelegramNetworkError
from aiogram.methods import (
    DeleteMessage,
    EditMessageReplyMarkup,
    EditMessageText,
    GetChatMember,
    GetMe,
    SendMessage,
    SendPhoto,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiogram.types import (
    CallbackQuery,
    Chat,
    ChatMemberAdministrator,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberOwner,
    ChatMemberUpdated,
    Message,
    MessageEntity,
    ResponseParameters,
    Update,
    User,
)

BOT_USER = User(id=42, is_bot=True, first_name="SMSC", username="smsc_test_bot")
_update_ids = itertools.count(1)
_message_ids = itertools.count(1000)


class MockedSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.requests: list[TelegramMethod[Any]] = []
        self.errors: dict[type, deque[tuple[int, str, int | None]]] = defaultdict(deque)
        self.admins: set[tuple[int, int]] = set()  # (chat_id, user_id)
        self.owners: set[tuple[int, int]] = set()
        self.anonymous: set[tuple[int, int]] = set()  # admins who post as the group
        self.undeletable: set[int] = set()  # chats where deleteMessage fails
        self.unwritable: set[int] = set()  # chats where sendMessage fails (no right to post)

    def fail(
        self, method: type, status: int, description: str, *, retry_after: int | None = None
    ) -> None:
        """The next call of `method` fails; status 0: a network error, no answer at all."""
        self.errors[method].append((status, description, retry_after))

    async def make_request(self, bot: Bot, method: TelegramMethod[Any], timeout: Any = None) -> Any:
        self.requests.append(method)
        status, description, result, parameters = 200, None, None, None
        if self.errors[type(method)]:
            status, description, retry_after = self.errors[type(method)].popleft()
            if status == 0:
                raise TelegramNetworkError(method, description)
            parameters = ResponseParameters(retry_after=retry_after)
        elif isinstance(method, DeleteMessage) and method.chat_id in self.undeletable:
            status, description = 400, "Bad Request: message can't be deleted"
        elif isinstance(method, SendMessage) and method.chat_id in self.unwritable:
            status, description = 400, "Bad Request: not enough rights to send text messages"
        else:
            result = self._result(method)
        response = Response[method.__returning__](  # type: ignore[name-defined]
            ok=status == 200,
            result=result,
            error_code=status,
            description=description,
            parameters=parameters,
        )
        checked = self.check_response(
            bot=bot, method=method, status_code=status, content=response.model_dump_json()
        )
        return checked.result

    def _result(self, method: TelegramMethod[Any]) -> Any:
        if isinstance(method, GetMe):
            return BOT_USER
        if isinstance(method, SendMessage | EditMessageText):
            chat_id = int(method.chat_id)
            return Message(
                message_id=getattr(method, "message_id", None) or next(_message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
                from_user=BOT_USER,
                text=method.text,
            )
        if isinstance(method, SendPhoto):
            chat_id = int(method.chat_id)
            return Message(
                message_id=next(_message_ids),
                date=datetime.now(UTC),
                chat=Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup"),
                from_user=BOT_USER,
                caption=method.caption,
            )
        if isinstance(method, GetChatMember):
            user = User(id=method.user_id, is_bot=False, first_name="U")
            key = (int(method.chat_id), method.user_id)
            if key in self.owners:
                return ChatMemberOwner(user=user, is_anonymous=False)
            if key in self.admins:
                rights = {
                    name: False
                    for name, field in ChatMemberAdministrator.model_fields.items()
                    if field.is_required() and name != "user"
                }
                rights["is_anonymous"] = key in self.anonymous
                return ChatMemberAdministrator(user=user, **rights)
            return ChatMemberMember(user=user)
        if isinstance(method, EditMessageReplyMarkup):
            return True
        return True

    async def close(self) -> None:
        pass

    async def stream_content(self, *args: Any, **kwargs: Any):  # pragma: no cover
        raise NotImplementedError


class MockedBot(Bot):
    session: MockedSession

    def __init__(self) -> None:
        super().__init__("42:TEST", session=MockedSession())
        self._me = BOT_USER

    def sent(self, chat_id: int | None = None) -> list[SendMessage]:
        return [
            r
            for r in self.session.requests
            if isinstance(r, SendMessage) and (chat_id is None or int(r.chat_id) == chat_id)
        ]

    def calls(self, method: type) -> list[Any]:
        return [r for r in self.session.requests if isinstance(r, method)]


def chat_of(chat_id: int, title: str | None = None, *, forum: bool = False) -> Chat:
    if chat_id > 0:
        return Chat(id=chat_id, type="private", first_name="Ann")
    return Chat(id=chat_id, type="supergroup", title=title or "Ops", is_forum=forum or None)


def message_update(
    chat_id: int,
    text: str,
    *,
    user_id: int | None = None,
    language: str = "en",
    reply_to: Message | None = None,
    sender_chat: bool = False,
    thread_id: int | None = None,  # a forum topic: the chat is a forum
) -> Update:
    user = User(id=user_id or abs(chat_id), is_bot=False, first_name="Ann", language_code=language)
    entities = None
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0]
        entities = [MessageEntity(type="bot_command", offset=0, length=len(command))]
    message = Message(
        message_id=next(_message_ids),
        date=datetime.now(UTC),
        chat=chat_of(chat_id, forum=thread_id is not None),
        from_user=user,
        sender_chat=chat_of(chat_id) if sender_chat else None,
        text=text,
        entities=entities,
        reply_to_message=reply_to,
        message_thread_id=thread_id,
        is_topic_message=thread_id is not None or None,
    )
    return Update(update_id=next(_update_ids), message=message)


def callback_update(
    message: SendMessage, data: str, *, user_id: int, language: str = "en"
) -> Update:
    chat_id = int(message.chat_id)
    bot_message = Message(
        message_id=next(_message_ids),
        date=datetime.now(UTC),
        chat=chat_of(chat_id),
        from_user=BOT_USER,
        text=message.text,
    )
    query = CallbackQuery(
        id=str(next(_update_ids)),
        from_user=User(id=user_id, is_bot=False, first_name="Ann", language_code=language),
        chat_instance="ci",
        message=bot_message,
        data=data,
    )
    return Update(update_id=next(_update_ids), callback_query=query)


def member_update(chat_id: int, *, joined: bool) -> Update:
    """The bot's membership changed: unblocked or added (`joined`), or blocked or removed."""
    user = User(id=abs(chat_id), is_bot=False, first_name="Ann")
    member, banned = ChatMemberMember(user=BOT_USER), ChatMemberBanned(user=BOT_USER, until_date=0)
    change = ChatMemberUpdated(
        chat=chat_of(chat_id),
        from_user=user,
        date=datetime.now(UTC),
        old_chat_member=banned if joined else member,
        new_chat_member=member if joined else banned,
    )
    return Update(update_id=next(_update_ids), my_chat_member=change)
