"""No secret in any log line: every record, from any logger, is masked when it is made."""

import asyncio
import json
import logging
import sys
import time

import pytest

from bot import logs
from bot.jsonlog import JsonLogFormatter
from bot.logs import MASK, SecretMask

TOKEN = "7000001:TEST-token-abcdef"


def test_every_occurrence_and_every_form_is_masked():
    mask = SecretMask()
    mask.remember("p@ss w0rd/+", "apikey-123", None, "")
    text = (
        "login=shop psw=p@ss w0rd/+ again p%40ss%20w0rd%2F%2B and p%40ss+w0rd%2F%2B key=apikey-123"
    )
    assert mask(text) == f"login=shop psw={MASK} again {MASK} and {MASK} key={MASK}"


def test_overlapping_secrets_leave_nothing_of_either():
    mask = SecretMask()
    mask.remember("abcdef", "defghi")
    assert mask("xx abcdefghi yy") == f"xx {MASK} yy"


def test_short_secrets_are_not_masked_everywhere():
    mask = SecretMask()
    mask.remember("123")
    assert mask("at 12:34:56 there were 123 lines") == "at 12:34:56 there were 123 lines"


def test_thousands_of_secrets_cost_little_per_record():
    mask = SecretMask()
    for i in range(10_000):
        mask.remember(f"password-{i:05d}-x")
    lines = [
        f"check failed key=abcd{i} error=SMSC unreachable: smsc.ru: ConnectError"
        for i in range(20_000)
    ]
    started = time.process_time()
    masked = [mask(line) for line in lines]
    per_record = (time.process_time() - started) / len(lines)
    assert masked == lines
    assert mask("oops password-04242-x leaked") == f"oops {MASK} leaked"
    assert per_record < 50e-6, f"{per_record * 1e6:.1f} µs a record"


def test_masks_third_party_records_args_and_tracebacks(installed, caplog):
    logs.remember(TOKEN)
    url = f"http://127.0.0.1/bot{TOKEN}/getUpdates"
    logging.getLogger("aiogram.dispatcher").error("Failed to fetch updates - %s", url)
    try:
        raise ConnectionError(f"Cannot connect {url}")
    except ConnectionError:
        logging.getLogger("aiohttp.client").exception("request failed")
    logging.getLogger("asyncio").warning("stack", stack_info=True, extra={"x": TOKEN})
    text = caplog.text + "".join(logging.Formatter().format(record) for record in caplog.records)
    assert TOKEN not in text
    assert f"bot{MASK}/getUpdates" in text and "ConnectionError: Cannot connect" in text


def test_a_malformed_log_call_is_logged_not_raised(installed, caplog):
    logs.remember(TOKEN)
    logging.getLogger("some.library").warning(f"value %d of {TOKEN}", "abc")
    [record] = caplog.records
    assert record.getMessage() == f"value %d of {MASK}"


def test_json_lines_mask_fields_passed_as_extra(installed, caplog):
    logs.remember(TOKEN)
    logging.getLogger("some.library").warning("fetch failed", extra={"url": f"/bot{TOKEN}/x"})
    [record] = caplog.records
    line = json.loads(JsonLogFormatter().format(record))
    assert line["url"] == f"/bot{MASK}/x" and line["message"] == "fetch failed"


def test_json_lines_give_ids_followed_by_punctuation_as_numbers():
    def fields(message, *args):
        record = logging.LogRecord("bot.x", logging.WARNING, __file__, 1, message, args, None)
        return json.loads(JsonLogFormatter().format(record))

    assert fields("update not handled update_id=%s: %s", 1, "boom")["update_id"] == 1
    assert fields("notification given up id=%s: its send raised", 42)["id"] == 42
    line = fields("Telegram not answering attempt=%d error=%s; retrying", 2, "Timeout")
    assert line["attempt"] == 2 and line["error"] == "Timeout"
    assert fields("a=b:c")["a"] == "b:c"  # inside a value it stays


@pytest.mark.parametrize(
    ("url", "password", "written"),
    [
        # As README advises: only @ : / # ? % encoded; a lower-case escape is one too.
        ("http://botapi:Qw!rty%402024@botapi:8081/", "Qw!rty@2024", "Qw!rty%402024"),
        ("socks5://ops:Pa55%2fword@proxy:1080", "Pa55/word", "Pa55%2fword"),
        ("postgresql+asyncpg://bot@db/bot?ssl=1&password=S3cret+P%21ss", "S3cret P!ss", "+P%21"),
        ("redis://:plain-pa55@redis:6379/0", "plain-pa55", "plain-pa55"),
    ],
)
def test_a_password_in_a_url_is_masked_as_sent_and_as_written(url, password, written):
    mask = SecretMask()
    mask.remember(*logs.url_secrets(url))
    line = mask(f"connecting to {url} as {password}")
    assert password not in line and written not in line


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (None, None),
        ("http://botapi:Qw!rty%402024@botapi:8081/", "http://botapi:8081/"),
        ("https://api.telegram.org/", "https://api.telegram.org/"),
        ("socks5://ops:pr0xy%40pa55@proxy.example:1080", "socks5://proxy.example:1080"),
        ("HTTP://[::1]:3128", "http://[::1]:3128"),
        ("http://host:8081/?password=pa55#pa55", "http://host:8081/"),
    ],
)
def test_a_log_line_names_a_url_without_its_secrets(url, shown):
    assert logs.shown_url(url) == shown


def test_secret_learnt_later_is_masked_from_then_on(installed, caplog):
    log = logging.getLogger("bot.test")
    secret = "learnt-later-secret"
    logs.remember(secret)
    log.info("value %s", secret)
    assert secret not in caplog.text


def test_uncaught_exceptions_are_logged_masked(installed, caplog):
    logs.remember(TOKEN)
    try:
        raise RuntimeError(f"token {TOKEN}")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    [record] = caplog.records
    assert record.levelname == "CRITICAL" and TOKEN not in logging.Formatter().format(record)


async def test_asyncio_task_errors_are_masked(installed, caplog):
    logs.remember(TOKEN)

    async def fail():
        raise RuntimeError(TOKEN)

    task = asyncio.get_running_loop().create_task(fail())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_exception_handler(
        {"message": "Task exception was never retrieved", "exception": task.exception()}
    )
    assert "never retrieved" in caplog.text and TOKEN not in caplog.text


def test_traceback_due_once_per_kind_in_a_while():
    kind = ("test", object())
    assert logs.traceback_due(kind) is True
    assert logs.traceback_due(kind) is False
    assert logs.traceback_due(("test", object())) is True
