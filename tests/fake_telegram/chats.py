"""The bot itself (getMe, its commands) and the chats it is in (getChat, members)."""

from __future__ import annotations

import re

from tests.fake_telegram.constants import BOT_USER, Json
from tests.fake_telegram.core import FakeTelegramCore
from tests.fake_telegram.errors import bad_request
from tests.fake_telegram.params import _int, _required_chat_id, _scope_key
from tests.fake_telegram.records import Call


class ChatsMixin(FakeTelegramCore):
    """getMe, set/get/deleteMyCommands, getChat, getChatMember, getChatAdministrators."""

    # ----- methods (called with the lock held) -----------------------------------------

    def _get_me(self) -> Json:
        return {
            **BOT_USER,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _set_my_commands(self, call: Call) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("commands are invalid")
        for command in commands:
            name = command.get("command", "") if isinstance(command, dict) else ""
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(command.get("description", "")) <= 256:
                raise bad_request("command description is empty")
        key = (_scope_key(call.params.get("scope")), call.params.get("language_code") or "")
        self._commands[key] = commands
        return True

    def _get_my_commands(self, call: Call) -> list[Json]:
        key = (_scope_key(call.params.get("scope")), call.params.get("language_code") or "")
        return self._commands.get(key, [])

    def _delete_my_commands(self, call: Call) -> bool:
        key = (_scope_key(call.params.get("scope")), call.params.get("language_code") or "")
        self._commands.pop(key, None)
        return True

    def _get_chat_member(self, call: Call) -> Json:
        chat_id = _required_chat_id(call.params)
        user_id = _int(call.params.get("user_id"), 0)
        if not user_id:
            raise bad_request("user not found")
        return self._member(chat_id, user_id, self._members[chat_id].get(user_id, "member"))

    def _get_chat_administrators(self, call: Call) -> list[Json]:
        chat_id = _required_chat_id(call.params)
        if self._chat(chat_id)["type"] == "private":
            raise bad_request("there are no administrators in the private chat")
        return [
            self._member(chat_id, user_id, status)
            for user_id, status in self._members[chat_id].items()
            if status in ("creator", "administrator")
        ]

    def _get_chat(self, call: Call) -> Json:
        return {
            **self._chat(_required_chat_id(call.params)),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
