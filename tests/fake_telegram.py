"""A fake Telegram Bot API server: a real HTTP server on 127.0.0.1 for tests and benchmarks.

The real bot talks to it through aiogram configured with
``AiohttpSession(api=TelegramAPIServer.from_base(fake.url))``, so requests arrive as
``POST {url}/bot{token}/{method}`` with form data (multipart when a file is attached, complex
values JSON-encoded).  The server runs on its own event loop in a daemon thread, so it serves
sync tests, async tests running the bot on their own loop, and the bot started as a subprocess.

Tests play the users (``message``, ``callback``, ``my_chat_member``, ``migrate``), shape the
world the bot sees (``set_member_status``, ``set_can_delete``, ``block``, one-off faults with
``fail``) and check what the bot did (``calls``, ``sent``, ``edits``, ``deleted``,
``transcript``, ``wait_for``/``await_for``).

Webhook mode: after ``setWebhook`` (https URL, secret token, allowed updates) the fake POSTs
queued updates, with the secret header, to the local addresses a test gives it
(``deliver_to``; the https URL itself is public and never called), round-robin, at the URL's
path. An answer other than 2xx, or no answer, is retried at the next address, as Telegram
retries, so no update is lost while one replica is alive; ``getWebhookInfo`` reports the last
failure. ``deliveries`` records each attempt; ``getUpdates`` answers 409 while a webhook is set.

Behaviour follows the Bot API where it matters to a bot (``smsc-and-telegram-facts.md``):
``getUpdates`` long-polls with offset/limit/timeout/allowed_updates (a newer ``getUpdates``
ends an older one with 409, as Telegram does); ``parse_mode=HTML`` is parsed into text and
entities and malformed HTML is refused with Telegram's "can't parse entities" errors; texts
over 4096 characters, captions over 1024, callback_data over 64 bytes, unchanged edits and
photos that are not PNG/JPEG are refused; replies carry errors aiogram maps to its exceptions.
All state is guarded by one lock; every call is O(1) or O(size of its own answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import mimetypes
import re
import struct
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from tests.loopback import LoopbackServer

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


@dataclass(slots=True)
class Call:
    """One request the bot made; ``error`` is set when the fake answered with an error."""

    method: str
    params: dict[str, Any]
    time: float  # time.monotonic() at arrival
    error: str | None = None  # e.g. "403 Forbidden: bot was blocked by the user"


@dataclass(slots=True)
class Delivery:
    """One POST of an update to a webhook address; ``error`` as getWebhookInfo tells it."""

    update_id: int
    address: str
    error: str | None


class ApiError(Exception):
    """An error reply: ``{"ok": false, "error_code": status, "description": ..., "parameters"}``."""

    def __init__(self, status: int, description: str, **parameters: int | None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = {k: v for k, v in parameters.items() if v is not None}

    def response(self) -> web.Response:
        body: Json = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.status)


async def _redirect_loop(request: web.Request) -> web.Response:
    # 307 keeps the POST a POST, so the client follows it as it came, until it gives up.
    return web.Response(status=307, headers={"Location": REDIRECT_LOOP})


def bad_request(text: str) -> ApiError:
    return ApiError(400, f"Bad Request: {text}")


# How a fault is answered: Telegram's JSON error; the HTML page its front servers send during
# incidents (with the error's status); no answer at all until the client gives up or the fake
# stops; the connection closed after `delay` seconds without an answer; a redirect into a loop
# (aiohttp gives up with TooManyRedirects, its message quoting the first URL, bot token and all).
FAULT_BODIES = ("json", "html", "hang", "drop", "redirect")
REDIRECT_LOOP = "/redirect-loop"
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(slots=True)
class _Fault:
    error: ApiError
    chat_id: int | None
    times: int
    body: str = "json"
    delay: float = 0.0


class _Misbehave(Exception):
    """Not an error of the fake: a fault it plays (see _Fault.body)."""

    def __init__(self, fault: _Fault) -> None:
        self.fault = fault


@dataclass(slots=True)
class _Stored:
    """A message as Telegram holds it, plus what only tests see (sent bytes, flags)."""

    message: Json
    extras: Json = field(default_factory=dict)
    deleted: bool = False


class FakeTelegram(LoopbackServer):
    """Bot API on ``http://127.0.0.1:<ephemeral port>``; use as a context manager."""

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
        self._handlers: dict[str, Callable[[Call], Any]] = {
            "getMe": lambda call: self._get_me(),
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send,
            "sendPhoto": self._send,
            "sendDocument": self._send,
            "editMessageText": self._edit,
            "editMessageCaption": self._edit,
            "editMessageReplyMarkup": self._edit,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "getChatMember": self._get_chat_member,
            "getChatAdministrators": self._get_chat_administrators,
            "getChat": self._get_chat,
            "sendChatAction": lambda call: True,
            "setMyDescription": lambda call: True,
            "setMyShortDescription": lambda call: True,
            "setChatMenuButton": lambda call: True,
            "close": lambda call: True,
            "logOut": lambda call: True,
        }
        self._method_names = {name.lower(): name for name in [*self._handlers, "getUpdates"]}

    # ----- lifecycle -------------------------------------------------------------------

    thread_name = "fake-telegram"
    # handler_cancellation: a long poll whose client went away (bot killed) stops at once
    # instead of swallowing updates meant for the next bot process.
    runner_options: ClassVar[dict[str, Any]] = {
        **LoopbackServer.runner_options,
        "handler_cancellation": True,
    }

    def _app(self) -> web.Application:
        self._wakeup = asyncio.Event()
        self._deliverable = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", REDIRECT_LOOP, _redirect_loop)
        app.on_cleanup.append(self._end_deliveries)
        return app

    async def _end_deliveries(self, _app: web.Application) -> None:
        for task in self._deliverers:
            task.cancel()
        await asyncio.gather(*self._deliverers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

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

    # ----- feeding updates -------------------------------------------------------------

    def push_update(self, update: Json) -> int:
        """Queue a raw update (any ``update_id`` in it is replaced); returns its update_id."""
        with self._lock:
            update_id = self._queue_update(update)
        self._wake_pollers()
        return update_id

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

    # ----- state the bot sees ----------------------------------------------------------

    def set_member_status(self, chat_id: int, user_id: int, status: str) -> None:
        _check_status(status)
        with self._lock:
            self._members[chat_id][user_id] = status

    def set_can_delete(self, chat_id: int, allowed: bool) -> None:
        with self._lock:
            self._can_delete[chat_id] = allowed

    def block(self, chat_id: int) -> None:
        """Every send/edit/delete in the chat now answers 403 (blocked by user / kicked)."""
        with self._lock:
            self._blocked[chat_id] = _forbidden_text(self._chat(chat_id)["type"], "kicked")

    def unblock(self, chat_id: int) -> None:
        with self._lock:
            self._blocked.pop(chat_id, None)

    def fail(
        self,
        method: str,
        *,
        status: int,
        description: str = "",
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        chat_id: int | None = None,
        times: int = 1,
        body: str = "json",
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` (only for ``chat_id`` if given) with an
        error, before any normal handling; ``body`` says how (see FAULT_BODIES: "hang" and
        "drop" and "redirect" ignore ``status``; "drop" waits ``delay`` seconds first)."""
        if body not in FAULT_BODIES:
            raise ValueError(f"body must be one of {FAULT_BODIES}")
        if not description:
            if status == 429:
                description = f"Too Many Requests: retry after {retry_after or 1}"
            else:
                with contextlib.suppress(ValueError):
                    description = HTTPStatus(status).phrase
                description = description or "Error"
        error = ApiError(
            status, description, retry_after=retry_after, migrate_to_chat_id=migrate_to_chat_id
        )
        with self._lock:
            self._faults[method.lower()].append(_Fault(error, chat_id, times, body, delay))

    def deliver_to(self, *addresses: str) -> None:
        """Where webhook updates go from now on (``http://127.0.0.1:PORT`` of each replica,
        as a load balancer would pass them), round-robin; the webhook's path is added."""
        with self._lock:
            self._addresses = [address.rstrip("/") for address in addresses]
            self._changed()
        self._wake_pollers()

    def add_delivery_address(self, address: str) -> None:
        with self._lock:
            addresses = [*self._addresses, address.rstrip("/")]
        self.deliver_to(*dict.fromkeys(addresses))

    @property
    def webhook(self) -> Json | None:
        """The webhook as setWebhook set it (url, secret_token, ...), or None."""
        with self._lock:
            return dict(self._webhook) if self._webhook is not None else None

    # ----- what the bot did ------------------------------------------------------------

    def calls_of(self, method: str, chat_id: int | None = None) -> list[Call]:
        with self._lock:
            return list(self._calls_by.get((method, chat_id), ()))

    def sent(self, chat_id: int | None = None) -> list[Json]:
        """Messages the bot sent successfully, in order, as they are now (after edits).

        Each is the Telegram message plus ``reply_markup`` (of any kind),
        ``disable_notification``, ``message_thread_id`` and ``photo_bytes``/``document_bytes``.
        """
        with self._lock:
            stored = self._sent if chat_id is None else self._sent_by_chat.get(chat_id, [])
            return [{**s.message, **s.extras} for s in stored]

    def deleted(self, chat_id: int) -> list[int]:
        with self._lock:
            return list(self._deleted.get(chat_id, ()))

    def edits(self, chat_id: int) -> list[Call]:
        with self._lock:
            return list(self._edits.get(chat_id, ()))

    def transcript(self, chat_id: int) -> list[str]:
        with self._lock:
            return list(self._lines.get(chat_id, ()))

    def commands(self, scope: Json | None = None, language_code: str = "") -> list[Json]:
        """The command list set by setMyCommands for that scope and language."""
        with self._lock:
            return list(self._commands.get((_scope_key(scope), language_code), ()))

    @property
    def updates_pending(self) -> int:
        """Queued updates getUpdates has not yet handed out (or skipped as not allowed), or
        the webhook not yet delivered."""
        with self._lock:
            return self._last_update_id - self._fetched_upto + self._in_delivery

    def wait_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:
        """Block until ``predicate()`` is truthy and return it; AssertionError on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                version = self._version
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(timeout))
            with self._cond:  # woken by any change; re-check now and then for outside state
                if self._version == version:
                    self._cond.wait(min(remaining, 0.05))

    async def await_for(self, predicate: Callable[[], T], timeout: float = 10.0) -> T:  # noqa: ASYNC109
        """``wait_for`` for async tests: polls without blocking the event loop."""
        deadline = time.monotonic() + timeout
        while not (value := predicate()):
            if time.monotonic() >= deadline:
                raise AssertionError(self._timeout_report(timeout))
            await asyncio.sleep(0.01)
        return value

    def _timeout_report(self, timeout: float) -> str:
        with self._lock:
            lines = list(self._tail)
            errors = [f"{c.method}: {c.error}" for c in self.calls[-200:] if c.error]
        report = [f"condition not met within {timeout}s; last transcript lines (chat: line):"]
        report += [f"  {line}" for line in lines] or ["  (none)"]
        if errors:
            report += ["errors answered recently:", *(f"  {e}" for e in errors[-10:])]
        if self.server_errors:
            report += ["fake server errors:", *(f"  {e}" for e in self.server_errors[-5:])]
        return "\n".join(report)

    # ----- request handling ------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        try:
            params, filenames = await _read_params(request)
        except web.HTTPRequestEntityTooLarge:
            return ApiError(413, "Request Entity Too Large").response()
        except Exception:  # a malformed body is the client's fault, never the server's end
            return bad_request("invalid request body").response()
        raw_method = request.match_info["method"]
        method = self._method_names.get(raw_method.lower(), raw_method)
        call = Call(method, params, time.monotonic())
        chat_id = params.get("chat_id") if isinstance(params.get("chat_id"), int) else None
        try:
            with self._lock:
                self.calls.append(call)
                self._calls_by[method, None].append(call)
                if chat_id is not None:
                    self._calls_by[method, chat_id].append(call)
                self._changed()
                self._raise_fault(method, chat_id)
            if method == "getUpdates":
                result: Any = await self._get_updates(params)
            else:
                handler = self._handlers.get(method)
                if handler is None:
                    raise ApiError(404, "Not Found: method not found")
                with self._lock:
                    self._check_chat(method, chat_id)
                    self._filenames = filenames
                    result = handler(call)
                    self._changed()
        except ApiError as error:
            with self._lock:
                call.error = f"{error.status} {error.description}"
                self._changed()
            return error.response()
        except _Misbehave as misbehave:
            return await self._misbehave(request, call, misbehave.fault)
        except Exception as exc:  # a bug of the fake: answer 500, keep serving
            with self._lock:
                call.error = f"500 {exc!r}"
                self.server_errors.append(f"{method}: {exc!r}")
                self._changed()
            return ApiError(500, f"Internal Server Error: {exc!r}").response()
        return web.json_response({"ok": True, "result": result})

    def _raise_fault(self, method: str, chat_id: int | None) -> None:
        faults = self._faults.get(method.lower(), [])
        for index, fault in enumerate(faults):
            if fault.chat_id is None or fault.chat_id == chat_id:
                fault.times -= 1
                if fault.times <= 0:
                    del faults[index]
                if fault.body == "json":
                    raise fault.error
                raise _Misbehave(fault)

    async def _misbehave(self, request: web.Request, call: Call, fault: _Fault) -> web.Response:
        status = fault.error.status
        with self._lock:
            call.error = {
                "html": f"{status} (HTML page)",
                "hang": "hang",
                "drop": "dropped",
                "redirect": "redirect loop",
            }[fault.body]
            self._changed()
        if fault.body == "html":
            phrase = "Error"
            with contextlib.suppress(ValueError):
                phrase = HTTPStatus(status).phrase
            page = HTML_PAGE.format(status=status, phrase=phrase)
            return web.Response(status=status, text=page, content_type="text/html")
        if fault.body == "redirect":
            return await _redirect_loop(request)
        if fault.body == "hang":
            assert self._stop_event is not None
            await self._stop_event.wait()  # or the client goes, and the handler is cancelled
        else:
            await asyncio.sleep(fault.delay)
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError  # no answer: aiohttp just ends the request

    def _check_chat(self, method: str, chat_id: int | None) -> None:
        if chat_id is None:
            return
        if chat_id in self._migrated:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self._migrated[chat_id],
            )
        if chat_id in self._blocked and method.startswith(WRITE_PREFIXES):
            raise ApiError(403, self._blocked[chat_id])

    async def _get_updates(self, params: Json) -> list[Json]:
        offset = _int(params.get("offset"), 0)
        limit = min(max(_int(params.get("limit"), 100), 1), 100)
        timeout = min(max(_int(params.get("timeout"), 0), 0), 50)
        allowed = params.get("allowed_updates")
        with self._lock:
            if self._webhook is not None:
                raise ApiError(409, WEBHOOK_ACTIVE)
            if isinstance(allowed, list):
                self._allowed_updates = frozenset(allowed) or None
        assert self._wakeup is not None
        self._poll_generation += 1
        generation = self._poll_generation
        self._wakeup.set()  # an older long poll ends with 409, as on Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, CONFLICT)
            with self._lock:
                batch = self._take_updates(offset, limit)
            remaining = deadline - loop.time()
            if batch or self._stopping or remaining <= 0:
                return batch
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _take_updates(self, offset: int, limit: int) -> list[Json]:
        queue = self._updates
        if offset < 0:  # -N: forget all but the last N updates
            while len(queue) > -offset:
                queue.popleft()
        while queue and queue[0][0] < offset:  # confirmed
            queue.popleft()
        allowed = self._is_allowed
        while queue and not allowed(queue[0][1]):  # never deliverable
            self._fetched_upto = max(self._fetched_upto, queue.popleft()[0])
        batch: list[Json] = []
        for update_id, kind, update in queue:
            if allowed(kind):
                if len(batch) == limit:
                    break
                batch.append(update)
            self._fetched_upto = max(self._fetched_upto, update_id)
        if batch:
            self._changed()
        return batch

    def _is_allowed(self, kind: str) -> bool:
        if self._allowed_updates is None:
            return kind not in OPT_IN_UPDATES
        return kind in self._allowed_updates

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

    def _delete_webhook(self, call: Call) -> bool:
        self._webhook = None
        if call.params.get("drop_pending_updates"):
            self._updates.clear()
            self._fetched_upto = self._last_update_id
        return True

    def _set_webhook(self, call: Call) -> bool:
        params = call.params
        url = str(params.get("url") or "")
        if not url:  # Telegram: an empty URL removes the webhook
            return self._delete_webhook(call)
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not WEBHOOK_SECRET_SHAPE.fullmatch(str(secret)):
            raise bad_request("secret token contains unallowed characters")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._webhook = {"url": url, "path": path, "secret_token": secret}
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(allowed) or None
            self._webhook["allowed_updates"] = sorted(allowed)
        if params.get("drop_pending_updates"):
            self._updates.clear()
            self._fetched_upto = self._last_update_id
        self._webhook_error = None
        self._poll_generation += 1  # a long poll under way ends
        if not self._deliverers:
            loop = asyncio.get_running_loop()  # handlers run on the server's loop
            self._http = aiohttp.ClientSession()
            self._deliverers = [
                loop.create_task(self._deliver_forever()) for _ in range(WEBHOOK_CONNECTIONS)
            ]
        self._wake_pollers()
        return True

    def _get_webhook_info(self, call: Call) -> Json:
        hook = self._webhook or {}
        info: Json = {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": self._last_update_id - self._fetched_upto + self._in_delivery,
        }
        if hook and self._webhook_error is not None:
            info["last_error_date"], info["last_error_message"] = self._webhook_error
        if "allowed_updates" in hook:
            info["allowed_updates"] = hook["allowed_updates"]
        return info

    # ----- webhook delivery (server loop) ----------------------------------------------

    async def _deliver_forever(self) -> None:
        assert self._deliverable is not None
        while not self._stopping:
            with self._lock:
                taken = self._take_for_delivery()
            if taken is None:
                self._deliverable.clear()  # no await since the look: no wake-up is missed
                await self._deliverable.wait()
            else:
                await self._deliver(taken)

    def _take_for_delivery(self) -> tuple[int, str, Json] | None:  # lock held
        if self._webhook is None or not self._addresses:
            return None
        while self._updates:
            entry = self._updates.popleft()
            self._fetched_upto = max(self._fetched_upto, entry[0])
            if self._is_allowed(entry[1]):
                self._in_delivery += 1
                return entry
        return None

    async def _deliver(self, entry: tuple[int, str, Json]) -> None:
        update_id, _kind, update = entry
        first = next(self._round_robin)
        for attempt in itertools.count():
            with self._lock:
                hook, addresses = self._webhook, self._addresses
                if hook is None or not addresses:  # deleted meanwhile: back for getUpdates
                    self._updates.appendleft(entry)
                    self._fetched_upto = min(self._fetched_upto, update_id - 1)
                    self._in_delivery -= 1
                    self._changed()
            if hook is None or not addresses:
                self._wake_pollers()
                return
            address = addresses[(first + attempt) % len(addresses)]
            error = await self._post(f"{address}{hook['path']}", hook.get("secret_token"), update)
            with self._lock:
                self.deliveries.append(Delivery(update_id, address, error))
                if error is None:
                    self._in_delivery -= 1
                else:
                    self._webhook_error = (int(time.time()), error)
                self._changed()
            if error is None:
                return
            if (attempt + 1) % len(addresses) == 0:
                await asyncio.sleep(REDELIVERY_PAUSE)

    async def _post(self, url: str, secret: str | None, update: Json) -> str | None:
        """None when answered 2xx, else the error as getWebhookInfo words it."""
        assert self._http is not None
        headers = {SECRET_HEADER: secret} if secret else {}
        try:
            async with self._http.post(
                url,
                json=update,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except aiohttp.ClientError as error:
            return f"Connection failed: {type(error).__name__}"

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

    def _send(self, call: Call) -> Json:
        params = call.params
        chat_id = _required_chat_id(params)
        chat = self._chat(chat_id)
        message: Json = {"message_id": 0, "from": BOT_USER, "chat": chat}
        thread_id = params.get("message_thread_id")
        if isinstance(thread_id, int):
            message["message_thread_id"] = thread_id
            if chat.get("is_forum"):
                message["is_topic_message"] = True
        message["date"] = int(time.time())
        reply = params.get("reply_parameters")
        reply = reply if isinstance(reply, dict) else {}
        reply_id = reply.get("message_id", params.get("reply_to_message_id"))
        if isinstance(reply_id, int):
            target = self._messages.get((chat_id, reply_id))
            if target is not None and not target.deleted:
                message["reply_to_message"] = _without_reply(target.message)
            elif not (
                reply.get("allow_sending_without_reply")
                or params.get("allow_sending_without_reply")
            ):
                raise bad_request("message to be replied not found")
        extras: Json = {}
        if call.method == "sendMessage":
            text, entities = _rich_text(params, "text", 4096)
            message["text"] = text
            if entities:
                message["entities"] = entities
            line = text
        else:
            kind = "photo" if call.method == "sendPhoto" else "document"
            data, name = self._upload(call, kind)
            file_id = f"fake-{kind}-{next(self._ids)}"
            self._files[file_id] = data
            file_info: Json = {
                "file_id": file_id,
                "file_unique_id": f"u{file_id}",
                "file_size": len(data),
            }
            if kind == "photo":
                width, height = _image_size(data)
                message["photo"] = [{**file_info, "width": width, "height": height}]
                line = "[photo]"
            else:
                mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
                message["document"] = {**file_info, "file_name": name, "mime_type": mime}
                line = f"[document {name}]"
            extras[f"{kind}_bytes"] = data
            if params.get("caption"):
                caption, entities = _rich_text(params, "caption", 1024)
                message["caption"] = caption
                if entities:
                    message["caption_entities"] = entities
                line = f"{line} {caption}"
        markup = _reply_markup(params)
        if markup and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        extras["reply_markup"] = markup
        extras["disable_notification"] = bool(params.get("disable_notification"))
        extras["message_thread_id"] = thread_id if isinstance(thread_id, int) else None

        self._message_seq[chat_id] += 1
        message["message_id"] = self._message_seq[chat_id]
        stored = _Stored(message, extras)
        self._messages[chat_id, message["message_id"]] = stored
        self._sent.append(stored)
        self._sent_by_chat[chat_id].append(stored)
        self._line(chat_id, f"bot: {line}{_buttons(markup)}")
        return message

    def _upload(self, call: Call, kind: str) -> tuple[bytes, str]:
        value = call.params.get(kind)
        if isinstance(value, bytes):
            name = self._filenames.get(kind) or kind
            if kind == "photo" and _image_size(value) == (0, 0):
                raise bad_request("IMAGE_PROCESS_FAILED")
            return value, name
        if isinstance(value, str) and value in self._files:
            return self._files[value], kind
        if not value:
            raise bad_request(f"there is no {kind} in the request")
        raise bad_request("wrong file identifier/HTTP URL specified")

    def _edit(self, call: Call) -> Json | bool:
        params = call.params
        if "chat_id" not in params and params.get("inline_message_id"):
            return True
        chat_id = _required_chat_id(params)
        stored = self._messages.get((chat_id, _int(params.get("message_id"), 0)))
        if stored is None or stored.deleted:
            raise bad_request("message to edit not found")
        if stored.message["from"]["id"] != BOT_ID:
            raise bad_request("message can't be edited")
        old = stored.message
        new = {k: v for k, v in old.items() if k not in ("edit_date", "reply_markup")}
        if call.method == "editMessageText":
            if "text" not in old:
                raise bad_request("there is no text in the message to edit")
            new["text"], new["entities"] = _rich_text(params, "text", 4096)
        elif call.method == "editMessageCaption":
            if "text" in old:
                raise bad_request("there is no caption in the message to edit")
            new["caption"], new["caption_entities"] = _rich_text(params, "caption", 1024)
        for key in ("entities", "caption_entities", "caption"):
            if not new.get(key):
                new.pop(key, None)
        markup = _reply_markup(params)
        if markup and markup.get("inline_keyboard"):
            new["reply_markup"] = markup
        if new == {k: v for k, v in old.items() if k != "edit_date"}:
            raise bad_request(NOT_MODIFIED)
        new["edit_date"] = int(time.time())
        stored.message = new
        stored.extras["reply_markup"] = new.get("reply_markup")
        self._edits[chat_id].append(call)
        self._line(
            chat_id, f"bot (edited): {_message_line(new)}{_buttons(new.get('reply_markup'))}"
        )
        return new

    def _delete_message(self, call: Call) -> bool:
        chat_id = _required_chat_id(call.params)
        message_id = _int(call.params.get("message_id"), 0)
        stored = self._messages.get((chat_id, message_id))
        if stored is None or stored.deleted:
            raise bad_request("message to delete not found")
        if not self._can_delete.get(chat_id, True):
            raise bad_request("message can't be deleted")
        stored.deleted = True
        self._deleted[chat_id].append(message_id)
        self._line(chat_id, f"[deleted message {message_id}]")
        return True

    def _answer_callback_query(self, call: Call) -> bool:
        if call.params.get("callback_query_id") not in self._callbacks:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
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


# ----- module helpers --------------------------------------------------------------------


async def _read_params(request: web.Request) -> tuple[Json, dict[str, str]]:
    """Query string plus body (form, multipart or JSON), decoded.

    JSON-looking values become objects and numbers (``chat_id`` an int, ``reply_markup`` a
    dict), except free-text parameters.  ``attach://`` references and file fields become
    bytes; the second value maps those parameters to their file names.
    """
    raw: dict[str, Any] = dict(request.query)
    files: dict[str, tuple[str, bytes]] = {}
    params: Json = {}
    if request.can_read_body:
        if request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                body = await request.json()
                if isinstance(body, dict):
                    params.update(body)
        else:
            for key, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    files[key] = (value.filename, value.file.read())
                else:
                    raw[key] = value
    for key, value in raw.items():
        params.setdefault(key, value if key in STRING_PARAMS else _json_or_str(value))
    filenames: dict[str, str] = {}
    for key, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            filenames[key], params[key] = files.pop(value[9:])
    for key, (filename, data) in files.items():  # a plain file field: photo=@chart.png
        params.setdefault(key, data)
        filenames.setdefault(key, filename)
    return params, filenames


def _without_reply(message: Json) -> Json:
    """A message as it appears in ``reply_to_message``: without a reply of its own."""
    return {key: value for key, value in message.items() if key != "reply_to_message"}


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        return default


def _required_chat_id(params: Json) -> int:
    chat_id = params.get("chat_id")
    if isinstance(chat_id, int) and not isinstance(chat_id, bool):
        return chat_id
    if chat_id in (None, ""):
        raise bad_request("chat_id is empty")
    raise bad_request("chat not found")


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


def _scope_key(scope: Any) -> str:
    return json.dumps(scope if isinstance(scope, dict) else {"type": "default"}, sort_keys=True)


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _image_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, (1, 1) for a JPEG (not measured), (0, 0) for anything else."""
    if data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8\xff"):
        return 1, 1
    return 0, 0


def _reply_markup(params: Json) -> Json | None:
    markup = params.get("reply_markup")
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard") or ():
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
    return markup


def _buttons(markup: Json | None) -> str:
    rows = (markup or {}).get("inline_keyboard") or (markup or {}).get("keyboard") or ()
    labels = [button.get("text", "") for row in rows for button in row]
    return "".join(f" [{label}]" for label in labels)


def _message_line(message: Json) -> str:
    if "text" in message:
        return str(message["text"])
    kind = "photo" if "photo" in message else "document"
    caption = message.get("caption")
    return f"[{kind}] {caption}" if caption else f"[{kind}]"


def _rich_text(params: Json, key: str, limit: int) -> tuple[str, list[Json]]:
    """Text or caption as Telegram stores it: HTML parsed to entities, limits checked."""
    value = params.get(key)
    text = "" if value is None else str(value)
    parse_mode = str(params.get("parse_mode") or "").lower()
    if parse_mode == "html":
        text, entities = _parse_html(text)
    else:
        given = params.get("caption_entities" if key == "caption" else "entities")
        entities = given if isinstance(given, list) else []
    if key == "text" and not text.strip():
        raise bad_request("message text is empty")
    if _utf16_len(text) > limit:
        raise bad_request("message is too long" if key == "text" else "message caption is too long")
    return text, entities


_HTML_TOKEN = re.compile(r"<[^<>]*>?|&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);")
_HTML_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^>]*)?>")
_HTML_TAG_NAME = re.compile(r"^</?([^\s/>]*)")
_HTML_ENTITY_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
    "ins": "underline", "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "span": "spoiler", "tg-spoiler": "spoiler", "a": "text_link", "code": "code", "pre": "pre",
    "blockquote": "blockquote", "tg-emoji": "custom_emoji",
}  # fmt: skip
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


def _parse_html(source: str) -> tuple[str, list[Json]]:
    """Telegram's HTML parse mode: the plain text and its entities (UTF-16 offsets)."""

    def fail(problem: str, at: int) -> ApiError:
        offset = len(source[:at].encode())
        return bad_request(f"can't parse entities: {problem} at byte offset {offset}")

    out: list[str] = []
    position = 0  # in UTF-16 code units
    stack: list[tuple[str, int, str]] = []  # open tags: (name, start, attributes)
    entities: list[Json] = []
    last = 0
    for match in _HTML_TOKEN.finditer(source):
        text = source[last : match.start()]
        out.append(text)
        position += _utf16_len(text)
        last = match.end()
        token = match.group()
        if token.startswith("&"):
            name = token[1:-1]
            if name.startswith("#"):
                code = int(name[2:], 16) if name[1] in "xX" else int(name[1:])
                piece = chr(code) if code < 0x110000 else token
            else:
                piece = _HTML_NAMED.get(name, token)
            out.append(piece)
            position += _utf16_len(piece)
            continue
        tag = _HTML_TAG.fullmatch(token)
        name = (tag.group(2) if tag else _HTML_TAG_NAME.findall(token)[0]).lower()
        attributes = (tag.group(3) or "") if tag else ""
        if tag is None or name not in _HTML_ENTITY_TYPES:
            raise fail(f'Unsupported start tag "{name}"', match.start())
        if name == "span" and not tag.group(1) and "tg-spoiler" not in attributes:
            raise fail('Unsupported start tag "span"', match.start())
        if tag.group(1):  # end tag
            if not stack or stack[-1][0] != name:
                raise fail("Unexpected end tag", match.start())
            _, start, open_attributes = stack.pop()
            if position > start:
                entities.append(_html_entity(name, start, position - start, open_attributes))
        else:
            stack.append((name, position, attributes))
    out.append(source[last:])
    if stack:
        name = stack[-1][0]
        raise bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{name}\""
        )
    entities.sort(key=lambda entity: (entity["offset"], -entity["length"]))
    return "".join(out), entities


def _html_entity(name: str, offset: int, length: int, attributes: str) -> Json:
    entity: Json = {"type": _HTML_ENTITY_TYPES[name], "offset": offset, "length": length}

    def attribute(attr: str) -> str:
        found = re.search(rf"{attr}\s*=\s*(?:\"([^\"]*)\"|'([^']*)'|([^\s>]+))", attributes)
        return (
            html.unescape(next((g for g in found.groups() if g is not None), "")) if found else ""
        )

    if name == "a":
        entity["url"] = attribute("href")
    elif name == "blockquote" and "expandable" in attributes:
        entity["type"] = "expandable_blockquote"
    elif name == "tg-emoji":
        entity["custom_emoji_id"] = attribute("emoji-id")
    return entity
