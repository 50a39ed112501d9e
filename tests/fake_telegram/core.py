"""The state all parts of FakeTelegram share, and the helpers they use with the lock held."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import defaultdict, deque

import aiohttp

from tests.fake_telegram.constants import (
    ADMIN_RIGHTS,
    BOT_ID,
    BOT_USER,
    MEMBER_STATUSES,
    Json,
)
from tests.fake_telegram.errors import _Fault
from tests.fake_telegram.records import Call, Delivery, _Stored
from tests.fake_telegram.text import _without_reply
from tests.loopback import LoopbackServer


class FakeTelegramCore(LoopbackServer):
    """State and helpers of FakeTelegram; the mixins add the Bot API areas to it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.server_errors: list[str] = []  # bugs of the fake itself (answered with 500)

        # State shared by the server thread and test threads; guarded by _lock.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._version = 0  # bumped on every change; wait_for waits for it to move
        self._calls_by: dict[tuple[str, int | None], list[Call]] = defaultdict(list)
        self._updates: deque[tuple[int, str, Json]] = deque()  # (update_id, type, update)
        self._last_update_id = 0
        self._fetched_upto = 0  # highest update_id getUpdates has delivered or skipped
        self._allowed_updates: frozenset[str] | None = None  # None: all but OPT_IN_UPDATES
        self._chats: dict[int, Json] = {}
        self._users: dict[int, Json] = {}
        self._message_seq: dict[int, int] = defaultdict(int)
        self._messages: dict[tuple[int, int], _Stored] = {}
        self._sent: list[_Stored] = []
        self._sent_by_chat: dict[int, list[_Stored]] = defaultdict(list)
        self._edits: dict[int, list[Call]] = defaultdict(list)
        self._deleted: dict[int, list[int]] = defaultdict(list)
        self._lines: dict[int, list[str]] = defaultdict(list)
        self._tail: deque[str] = deque(maxlen=25)
        self._members: dict[int, dict[int, str]] = defaultdict(dict)
        self._can_delete: dict[int, bool] = {}
        self._blocked: dict[int, str] = {}
        self._migrated: dict[int, int] = {}
        self._faults: dict[str, list[_Fault]] = defaultdict(list)
        self._late: dict[str, float] = {}  # method (lower case): seconds its answers wait
        self._callbacks: set[str] = set()
        self._commands: dict[tuple[str, str], list[Json]] = {}
        self._files: dict[str, bytes] = {}
        self._ids = itertools.count(1)  # callback query and file ids
        self._filenames: dict[str, str] = {}  # file names of the request being handled
        self.deliveries: list[Delivery] = []
        self._webhook: Json | None = None  # url, path, secret_token as setWebhook gave them
        self._addresses: list[str] = []  # where webhook updates really go (deliver_to)
        self._webhook_error: tuple[int, str] | None = None  # (unix time, message)
        self._in_delivery = 0  # updates taken for delivery, not yet answered 2xx

        # Server-thread only.
        self._wakeup: asyncio.Event | None = None  # set when updates arrive or polls must end
        self._stopping = False
        self._poll_generation = 0
        self._deliverable: asyncio.Event | None = None  # set when a delivery may be possible
        self._http: aiohttp.ClientSession | None = None
        self._deliverers: list[asyncio.Task[None]] = []
        self._round_robin = itertools.count()

    # ----- lifecycle -------------------------------------------------------------------

    def _begin_stop(self) -> None:  # on the server loop
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()  # pending long polls answer [] right away
        super()._begin_stop()

    def _wake_pollers(self) -> None:  # any thread
        loop = self._loop
        for event in (self._wakeup, self._deliverable):
            if loop is not None and event is not None:
                with contextlib.suppress(RuntimeError):  # loop closed: nobody is waiting
                    loop.call_soon_threadsafe(event.set)

    # ----- helpers (lock held) ---------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def _queue_update(self, update: Json) -> int:
        self._last_update_id += 1
        update = {"update_id": self._last_update_id} | {
            key: value for key, value in update.items() if key != "update_id"
        }
        kind = next((key for key in update if key != "update_id"), "unknown")
        self._updates.append((self._last_update_id, kind, update))
        self._changed()
        return self._last_update_id

    def _chat(self, chat_id: int) -> Json:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                chat = {"id": chat_id, "type": "private", "first_name": "Ann"}
            else:
                chat = {"id": chat_id, "type": _group_type(chat_id), "title": f"Group {chat_id}"}
        return chat

    def _remember_chat(
        self, chat_id: int, chat_type: str, title: str | None, first_name: str, forum: bool
    ) -> Json:
        old = self._chats.get(chat_id, {})
        if chat_id > 0:  # users have positive ids, groups and channels negative ones
            chat_type = "private"
        elif chat_type == "private":
            chat_type = old.get("type") or _group_type(chat_id)
        forum = forum or bool(old.get("is_forum"))
        if forum:
            chat_type = "supergroup"
        chat: Json = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = first_name
        else:
            chat["title"] = title or old.get("title") or f"Group {chat_id}"
        if forum:
            chat["is_forum"] = True
        if chat != old:
            self._chats[chat_id] = chat
        return self._chats[chat_id]

    def _reply_copy(self, chat_id: int, message_id: int) -> Json:
        stored = self._messages.get((chat_id, message_id))
        if stored is None or stored.deleted:
            raise ValueError(f"no message {message_id} in chat {chat_id} to reply to")
        return _without_reply(stored.message)

    def _member(self, chat_id: int, user_id: int, status: str) -> Json:
        if user_id == BOT_ID:
            user = BOT_USER
        else:
            user = self._users.get(user_id) or {
                "id": user_id, "is_bot": False, "first_name": f"User {user_id}"
            }  # fmt: skip
        member: Json = {"status": status, "user": user}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "administrator":
            member.update({"can_be_edited": False, "is_anonymous": False})
            member.update(dict.fromkeys(ADMIN_RIGHTS, True))
            member["can_delete_messages"] = self._can_delete.get(chat_id, True)
        elif status == "kicked":
            member["until_date"] = 0
        return member

    def _line(self, chat_id: int, line: str) -> None:
        self._lines[chat_id].append(line)
        self._tail.append(f"{chat_id}: {line}")


def _group_type(chat_id: int) -> str:
    return "supergroup" if str(chat_id).startswith("-100") else "group"


def _forbidden_text(chat_type: str, status: str) -> str:
    if chat_type == "private":
        return "Forbidden: bot was blocked by the user"
    chat_kind = "supergroup chat" if chat_type == "supergroup" else "group chat"
    if status == "left":
        return f"Forbidden: bot is not a member of the {chat_kind}"
    return f"Forbidden: bot was kicked from the {chat_kind}"


def _check_status(status: str) -> None:
    if status not in MEMBER_STATUSES:
        raise ValueError(f"unknown member status {status!r}; expected one of {MEMBER_STATUSES}")
