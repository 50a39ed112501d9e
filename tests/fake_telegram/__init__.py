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

The package, by concern: ``constants`` (who the bot is, limits, texts), ``records`` (calls,
deliveries, stored messages), ``errors`` (error replies and faults), ``params`` and ``text``
(request decoding, HTML parse mode, transcript lines), ``core`` (shared state and helpers),
the mixins ``users``, ``world``, ``observe`` (the test's side) and ``delivery``, ``messages``,
``chats`` (the Bot API's), and ``server`` (``FakeTelegram`` and its request handling).
"""

from tests.fake_telegram.constants import (
    ADMIN_RIGHTS,
    ANONYMOUS_ADMIN,
    ANONYMOUS_ADMIN_ID,
    BOT_ID,
    BOT_NAME,
    BOT_USER,
    BOT_USERNAME,
    CONFLICT,
    GROUP_USER_ID,
    MEMBER_STATUSES,
    NOT_MODIFIED,
    OPT_IN_UPDATES,
    PNG_SIGNATURE,
    REDELIVERY_PAUSE,
    SECRET_HEADER,
    STRING_PARAMS,
    WEBHOOK_ACTIVE,
    WEBHOOK_CONNECTIONS,
    WEBHOOK_SECRET_SHAPE,
    WEBHOOK_TIMEOUT,
    WRITE_PREFIXES,
    Json,
)
from tests.fake_telegram.errors import FAULT_BODIES, HTML_PAGE, REDIRECT_LOOP, ApiError, bad_request
from tests.fake_telegram.records import Call, Delivery
from tests.fake_telegram.server import FakeTelegram

__all__ = [
    "ADMIN_RIGHTS",
    "ANONYMOUS_ADMIN",
    "ANONYMOUS_ADMIN_ID",
    "BOT_ID",
    "BOT_NAME",
    "BOT_USER",
    "BOT_USERNAME",
    "CONFLICT",
    "FAULT_BODIES",
    "GROUP_USER_ID",
    "HTML_PAGE",
    "MEMBER_STATUSES",
    "NOT_MODIFIED",
    "OPT_IN_UPDATES",
    "PNG_SIGNATURE",
    "REDELIVERY_PAUSE",
    "REDIRECT_LOOP",
    "SECRET_HEADER",
    "STRING_PARAMS",
    "WEBHOOK_ACTIVE",
    "WEBHOOK_CONNECTIONS",
    "WEBHOOK_SECRET_SHAPE",
    "WEBHOOK_TIMEOUT",
    "WRITE_PREFIXES",
    "ApiError",
    "Call",
    "Delivery",
    "FakeTelegram",
    "Json",
    "bad_request",
]
