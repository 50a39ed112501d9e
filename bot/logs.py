"""Log records with every secret the process knows masked, whoever logs them.

`install()` runs before anything else logs. It replaces the log record factory, so every record
- ours, aiogram's, aiohttp's, asyncio's, SQLAlchemy's, for any handler or formatter added
later - is masked once, when it is made: its message with the args merged in, the formatted
exception text (rendered here, then `exc_info` dropped so no formatter renders it again
unmasked) and the stack. Uncaught exceptions go through logging too.

Secrets are registered where they appear (`remember`): the bot token and SECRET_KEY when the
settings are read, SMSC passwords and API keys when sent to SMSC, stored or read back (never
merely typed: a stranger's "password" must not blank a word in every line). With thousands
of them known, one Aho-Corasick pass finds them all in a record.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from types import TracebackType
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

from ahocorasick import Automaton

MASK = "***"
# Shorter strings are not masked: "1234" would blank every number in the log.
MIN_SECRET_LENGTH = 4
# A traceback of the same unexpected kind of error is logged at most this often.
TRACEBACK_EVERY = 300.0
# New secrets are looked for with `in` until this many wait; then they go into a small
# automaton, which joins the big one once it holds a quarter as many. Rebuilding one automaton
# of all secrets for each few new ones cost a second of CPU as a sweep met 10,000.
PENDING_LIMIT = 32
SMALL_SHARE = 4


class SecretMask:
    """The secrets known, and their masking in text. Thread-safe: records come from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[str] = set()
        # What a record is searched with: each replaced whole, never changed in place, so that
        # a record masked in another thread without the lock sees every secret (see __call__).
        self._pending: frozenset[str] = frozenset()  # the newest, not yet in an automaton
        self._small: tuple[frozenset[str], Automaton | None] = (frozenset(), None)
        self._big: Automaton | None = None

    def remember(self, *secrets: str | None) -> None:
        """Mask these from now on, also as they appear in URLs and JSON."""
        known = self._known  # a sweep builds the same credentials again: no new forms
        forms = {form for s in secrets if s and s not in known for form in _forms(s)}
        if not forms:
            return
        with self._lock:
            new = forms - self._known
            if not new:
                return
            self._known |= new
            if len(self._pending) + len(new) <= PENDING_LIMIT:
                self._pending = self._pending | new
                return
            small = self._small[0] | self._pending | new
            if len(small) * SMALL_SHARE > len(self._known):
                self._big = _automaton(self._known)
                small = frozenset()
            self._small = (small, _automaton(small) if small else None)
            self._pending = frozenset()

    def __call__(self, text: str) -> str:
        # Read in the order they are written back to front: a secret leaves `_pending` only
        # after the automaton that holds it is in place.
        pending = self._pending
        small = self._small[1]
        big = self._big
        spans = [
            (end + 1 - length, end + 1)
            for automaton in (big, small)
            if automaton is not None
            for end, length in automaton.iter(text)
        ]
        for secret in pending:
            start = text.find(secret)
            while start >= 0:
                spans.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        if not spans:
            return text
        spans.sort()
        parts, position = [], 0
        for start, end in spans:
            if end <= position:
                continue  # inside a span already masked
            parts.append(text[position : max(start, position)])
            if start >= position:
                parts.append(MASK)
            position = end
        parts.append(text[position:])
        return "".join(parts)


def _forms(secret: str) -> Iterable[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return (form for form in forms if len(form) >= MIN_SECRET_LENGTH)


def _automaton(words: Iterable[str]) -> Automaton:
    automaton = Automaton()
    for word in words:
        automaton.add_word(word, len(word))
    automaton.make_automaton()
    return automaton


mask = SecretMask()
remember = mask.remember


def url_secrets(url: str) -> list[str]:
    """What to `remember` of a URL: its password as sent (decoded) and as written in it, and a
    `?password=` one's (asyncpg and redis-py take that too). A password written as README
    advises (only @ : / # ? % encoded) is in its URL in none of the forms `remember` makes of
    the password sent: as written, it is masked too."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a database URL's that SQLAlchemy reads: its caller adds that password
        return []
    found = [(parts.password or "", unquote)]
    for pair in parts.query.split("&"):
        key, _, value = pair.partition("=")
        if unquote_plus(key) == "password":
            found.append((value, unquote_plus))
    return [form for written, decode in found if written for form in (written, decode(written))]


def shown_url(url: str | None) -> str | None:
    """A URL as a log line may say it: without user:password@, query or fragment, where its
    secrets would be (None: no URL). Not for a database's: SQLAlchemy reads those otherwise."""
    if url is None:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


_tracebacks_shown: dict[object, float] = {}


def traceback_due(kind: object) -> bool:
    """For `exc_info=`: True for the first error of `kind`, then once per TRACEBACK_EVERY, so
    that an error repeating each second is one line each time, not a traceback storm."""
    now = time.monotonic()
    shown = _tracebacks_shown.get(kind)
    if shown is not None and now - shown < TRACEBACK_EVERY:
        return False
    _tracebacks_shown[kind] = now
    return True


def _masking_factory(factory):  # type: ignore[no-untyped-def]
    def make_record(*args, **kwargs) -> logging.LogRecord:  # type: ignore[no-untyped-def]
        record = factory(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a malformed call ("%d" of a string), from any library
            # Plain logging reports it when the record is written; here it would raise in the
            # caller. The text without its args still says what was logged.
            message = str(record.msg)
        record.msg, record.args = mask(message), None
        if record.exc_info:
            record.exc_text = mask("".join(traceback.format_exception(*record.exc_info)).rstrip())
            # Filters may still ask what was raised (bot.factory's, of jobs cancelled at
            # shutdown): the exception's class stays, its text is in `exc_text` only. JSON
            # lines show it as a field of its own ("exc_class": "ZeroDivisionError").
            record.exc_class = record.exc_info[0]
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        return record

    make_record.masks_secrets = True  # type: ignore[attr-defined]
    return make_record


def raised(record: logging.LogRecord, kind: type[BaseException]) -> bool:
    """Whether the record logs an exception of `kind`, for filters: masked records keep the
    exception's class only (`exc_class`, see above), others their `exc_info`."""
    found = record.exc_info[0] if record.exc_info else getattr(record, "exc_class", None)
    return found is not None and issubclass(found, kind)


def install() -> None:
    """Mask every log record from now on, and log uncaught exceptions (masked) instead of
    printing them raw. Idempotent."""
    factory = logging.getLogRecordFactory()
    if not getattr(factory, "masks_secrets", False):
        logging.setLogRecordFactory(_masking_factory(factory))
    sys.excepthook = _log_uncaught
    threading.excepthook = lambda args: _log_uncaught(
        args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback
    )


def _log_uncaught(
    kind: type[BaseException], error: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, error, tb))
