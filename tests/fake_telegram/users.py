"""Tests play the users: messages, button presses, membership changes, migrations."""

from __future__ import annotations

import time

from tests.fake_telegram.constants import ANONYMOUS_ADMIN, BOT_ID, GROUP_USER_ID, Json
from tests.fake_telegram.core import FakeTelegramCore, _check_status, _forbidden_text
from tests.fake_telegram.records import _Stored
from tests.fake_telegram.text import _utf16_len


class UsersMixin(FakeTelegramCore):
    """Queue the updates users cause; each call wakes pending getUpdates and deliveries."""

    # ----- feeding updates -------------------------------------------------------------

    def message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        title: str | None = None,
        thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        sender_chat_id: int | None = None,
        language_code: str = "en",
        first_name: str = "Ann",
    ) -> int:
        """Queue a user's text message; returns its message_id.

        A positive ``chat_id`` is always a private chat; ``chat_type`` "private" with a negative
        one means the group type remembered for the chat, else "supergroup" for -100... ids and
        "group" for others.  The update is delivered as is: privacy mode is not simulated.
        """
        with self._lock:
            chat = self._remember_chat(chat_id, chat_type, title, first_name, thread_id is not None)
            if user_id is None:
                user_id = chat_id if chat["type"] == "private" else GROUP_USER_ID
            user = self._users[user_id] = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                "language_code": language_code,
            }
            message_id = self._message_seq[chat_id] + 1
            message: Json = {"message_id": message_id, "from": user, "chat": chat}
            name = first_name
            if sender_chat_id is not None:
                sender_chat = self._chat(sender_chat_id)
                message["from"] = ANONYMOUS_ADMIN
                message["sender_chat"] = sender_chat
                name = sender_chat.get("title", "Group")
            if thread_id is not None:
                message["message_thread_id"] = thread_id
                message["is_topic_message"] = True
            message["date"] = int(time.time())
            if reply_to_message_id is not None:
                message["reply_to_message"] = self._reply_copy(chat_id, reply_to_message_id)
            message["text"] = text
            if text.startswith("/"):
                command = text.split(maxsplit=1)[0]
                message["entities"] = [
                    {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
                ]
            self._message_seq[chat_id] = message_id
            self._messages[chat_id, message_id] = _Stored(message)
            self._line(chat_id, f"{name}: {text}")
            self._queue_update({"message": message})
        self._wake_pollers()
        return message_id

    def callback(
        self,
        chat_id: int,
        message_id: int,
        data: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        language_code: str = "en",
    ) -> str:
        """Queue a press on an inline button of the bot's message; returns the query id.

        The chat (and so its type) is the stored message's; ``chat_type`` is not needed.
        """
        with self._lock:
            stored = self._messages.get((chat_id, message_id))
            if stored is None or stored.deleted or stored.message["from"]["id"] != BOT_ID:
                raise ValueError(f"no message {message_id} of the bot in chat {chat_id}")
            private = stored.message["chat"]["type"] == "private"
            if user_id is None:
                user_id = chat_id if private else GROUP_USER_ID
            known = self._users.get(user_id, {"id": user_id, "is_bot": False, "first_name": "Ann"})
            user = self._users[user_id] = {**known, "language_code": language_code}
            query_id = str(4_000_000_000 + next(self._ids))
            self._callbacks.add(query_id)
            query = {
                "id": query_id,
                "from": user,
                "message": stored.message,
                "chat_instance": str(abs(chat_id) * 7 + 1),
                "data": data,
            }
            self._line(chat_id, f"{user['first_name']} [button]: {data}")
            self._queue_update({"callback_query": query})
        self._wake_pollers()
        return query_id

    def my_chat_member(
        self,
        chat_id: int,
        new_status: str,
        *,
        chat_type: str = "group",
        user_id: int = GROUP_USER_ID,
        old_status: str | None = None,
        title: str | None = None,
    ) -> int:
        """Queue a change of the bot's own membership; returns the update_id.

        It also changes what the bot then sees: its status in the chat, and sends to the chat
        answer 403 after "kicked"/"left" (blocked by the user, in a private chat) until it is
        a member again.
        """
        _check_status(new_status)
        if old_status is None:
            old_status = (
                "left" if new_status in ("member", "administrator", "creator") else "member"
            )
        with self._lock:
            chat = self._remember_chat(chat_id, chat_type, title, "Ann", False)
            user = self._users.setdefault(
                user_id, {"id": user_id, "is_bot": False, "first_name": "Ann"}
            )
            self._members[chat_id][BOT_ID] = new_status
            if new_status in ("left", "kicked"):
                self._blocked[chat_id] = _forbidden_text(chat["type"], new_status)
            else:
                self._blocked.pop(chat_id, None)
            update = {
                "chat": chat,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": self._member(chat_id, BOT_ID, old_status),
                "new_chat_member": self._member(chat_id, BOT_ID, new_status),
            }
            self._line(chat_id, f"[bot status: {old_status} -> {new_status}]")
            update_id = self._queue_update({"my_chat_member": update})
        self._wake_pollers()
        return update_id

    def migrate(self, old_chat_id: int, new_chat_id: int) -> None:
        """Upgrade a group to a supergroup: calls on the old id answer 400 with
        migrate_to_chat_id, and the service messages of both chats are queued."""
        with self._lock:
            old_chat = self._chat(old_chat_id)
            new_chat = {
                "id": new_chat_id,
                "type": "supergroup",
                "title": old_chat.get("title", f"Group {new_chat_id}"),
            }
            self._chats[new_chat_id] = new_chat
            self._migrated[old_chat_id] = new_chat_id
            self._members[new_chat_id].update(self._members.get(old_chat_id, {}))
            if old_chat_id in self._can_delete:
                self._can_delete[new_chat_id] = self._can_delete[old_chat_id]
            creator = self._users.get(GROUP_USER_ID) or {
                "id": GROUP_USER_ID, "is_bot": False, "first_name": "Ann"
            }  # fmt: skip
            for chat, key, other in (
                (old_chat, "migrate_to_chat_id", new_chat_id),
                (new_chat, "migrate_from_chat_id", old_chat_id),
            ):
                chat_id = chat["id"]
                self._message_seq[chat_id] += 1
                message = {
                    "message_id": self._message_seq[chat_id],
                    "from": creator,
                    "chat": chat,
                    "date": int(time.time()),
                    key: other,
                }
                self._messages[chat_id, message["message_id"]] = _Stored(message)
                self._line(chat_id, f"[{key} {other}]")
                self._queue_update({"message": message})
        self._wake_pollers()
