"""Who the fake bot is, the limits and texts of the Bot API it plays, webhook timings."""

from __future__ import annotations

import re
from typing import Any, TypeVar

BOT_ID = 7000001
BOT_USERNAME = "smsc_test_bot"
BOT_NAME = "SMSC Balance Test Bot"
ANONYMOUS_ADMIN_ID = 1087968824
GROUP_USER_ID = 1  # default author of group messages, callbacks and membership changes

Json = dict[str, Any]
T = TypeVar("T")

BOT_USER: Json = {"id": BOT_ID, "is_bot": True, "first_name": BOT_NAME, "username": BOT_USERNAME}
ANONYMOUS_ADMIN: Json = {
    "id": ANONYMOUS_ADMIN_ID,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
MEMBER_STATUSES = ("creator", "administrator", "member", "left", "kicked")
ADMIN_RIGHTS = (
    "can_manage_chat", "can_delete_messages", "can_manage_video_chats", "can_restrict_members",
    "can_promote_members", "can_change_info", "can_invite_users", "can_post_stories",
    "can_edit_stories", "can_delete_stories", "can_send_welcome_messages", "can_pin_messages",
    "can_manage_topics",
)  # fmt: skip
# Update types Telegram leaves out unless allowed_updates names them.
OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
# Parameters that are free text or opaque ids: never JSON-decoded ("123" stays a string).
STRING_PARAMS = frozenset({
    "text", "caption", "callback_query_id", "inline_message_id", "parse_mode", "language_code",
    "photo", "document", "url", "title", "description", "short_description", "name", "action",
    "emoji", "business_connection_id", "message_effect_id", "custom_title", "file_id",
    "secret_token",
})  # fmt: skip
WRITE_PREFIXES = ("send", "edit", "delete", "copy", "forward", "pin", "unpin")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# Concurrent deliveries, as Telegram's max_connections (default 40).
WEBHOOK_CONNECTIONS = 40
# After every address failed an update once, this long before the next round (Telegram waits
# longer; tests should not).
REDELIVERY_PAUSE = 0.2
WEBHOOK_TIMEOUT = 60.0  # Telegram gives a webhook about a minute to answer
