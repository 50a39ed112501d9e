"""Unit tests of the SMSC balance client, with httpx.MockTransport standing in for SMSC: its
successful and error replies. Failover and secrets: tests/test_smsc_failover.py; sites and
credentials: tests/test_smsc_sites.py; over real HTTP: tests/test_smsc_http.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from urllib.parse import parse_qs

import httpx
import pytest

from bot import logs
from bot.smsc.client import Balance, Credentials
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBadRequest,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
    SmscUnavailable,
)
from tests.smsc_fixtures import (
    APIKEY,
    CREDS,
    KEY_CREDS,
    PASSWORD,
    Recorder,
    assert_no_secret,
    fetch,
    reply,
)

# ----- successful replies --------------------------------------------------------------


async def test_balance_is_an_exact_decimal() -> None:
    balance = await fetch(reply({"balance": "0.10", "currency": "RUB"}))
    assert balance == Balance(Decimal("0.10"), Decimal(0), "RUB")
    assert str(balance.balance) == "0.10"


async def test_credit_and_currency() -> None:
    balance = await fetch(reply({"balance": "84.75", "credit": "10.00", "currency": "KZT"}))
    assert balance == Balance(Decimal("84.75"), Decimal("10.00"), "KZT")


async def test_without_credit_or_currency() -> None:
    balance = await fetch(reply({"balance": "-3.1"}))
    assert balance == Balance(Decimal("-3.1"), Decimal(0), None)


async def test_the_largest_amounts_and_currencies_taken() -> None:
    big = "-" + "9" * 18 + "." + "9" * 10  # 28 digits: Decimal's precision
    balance = await fetch(reply({"balance": big, "credit": big, "currency": "Тенге"}))
    assert balance == Balance(Decimal(big), Decimal(big), "Тенге")
    assert len(str(balance.balance)) <= 40  # the database's Money column


async def test_bare_json_numbers_stay_exact() -> None:
    balance = await fetch(reply(b'{"balance": 0.10, "credit": 5}'))
    assert balance.balance == Decimal("0.10")
    assert str(balance.balance) == "0.10"
    assert balance.credit == 5


async def test_login_and_password_are_posted_not_in_the_url() -> None:
    recorder = Recorder(reply({"balance": "1.00"}))
    async with recorder.client() as client:
        await client.fetch_balance(CREDS)
    (request,) = recorder.requests
    assert request.method == "POST"
    assert str(request.url) == "https://smsc.ru/sys/balance.php"
    form = parse_qs(request.content.decode(), strict_parsing=True)
    assert form == {"login": ["alice"], "psw": [PASSWORD], "fmt": ["3"], "cur": ["1"]}


async def test_a_secret_is_masked_in_logs_from_its_first_request_not_before() -> None:
    creds = Credentials("https://smsc.ru", "bob", "sent-secret-5d2b")
    assert logs.mask(creds.secret) == creds.secret  # typed only: anyone may type any word
    masked_when_sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        masked_when_sent.append(logs.mask(f"psw={creds.secret}"))
        return httpx.Response(503)

    with pytest.raises(SmscUnavailable):
        await fetch(handler, creds)
    assert masked_when_sent == ["psw=***"]


async def test_apikey_is_posted_instead_of_login() -> None:
    recorder = Recorder(reply({"balance": "1.00"}))
    async with recorder.client() as client:
        await client.fetch_balance(KEY_CREDS)
    (request,) = recorder.requests
    assert str(request.url) == "https://smsc.kz/sys/balance.php"
    form = parse_qs(request.content.decode(), strict_parsing=True)
    assert form == {"apikey": [APIKEY], "fmt": ["3"], "cur": ["1"]}


# ----- error replies -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (1, SmscBadRequest),
        (2, SmscAuthError),
        (4, SmscIpBlocked),
        (9, SmscRateLimited),
        (7, SmscApiError),
        ("2", SmscAuthError),
    ],
)
async def test_error_codes(code: int | str, error_type: type[SmscApiError]) -> None:
    with pytest.raises(SmscApiError) as caught:
        await fetch(reply({"error": "some text", "error_code": code}))
    assert type(caught.value) is error_type
    assert caught.value.code == int(code)
    assert caught.value.description == "some text"
    assert str(caught.value) == f"SMSC error {code}: some text"


async def test_a_long_error_description_is_cut() -> None:
    """Every line quoting it (/status, `check`, the logs) stays short, whatever SMSC says."""
    with pytest.raises(SmscApiError) as caught:
        await fetch(reply({"error": "x" * 5000, "error_code": 3}))
    assert str(caught.value) == f"SMSC error 3: {'x' * 199}…"


async def test_an_error_is_never_a_balance() -> None:
    with pytest.raises(SmscAuthError):
        await fetch(reply({"error": "authorise error", "error_code": 2, "balance": "0"}))


async def test_an_echoed_secret_is_scrubbed_from_the_description() -> None:
    with pytest.raises(SmscAuthError) as caught:
        await fetch(reply({"error": f"bad password {PASSWORD}", "error_code": 2}))
    assert caught.value.description == "bad password ***"
    assert_no_secret(caught.value)


async def test_a_body_its_content_encoding_does_not_decode_is_a_protocol_error() -> None:
    """A gzip header on a plain body (a proxy's mistake): the chat told of an unexpected
    answer, where httpx's DecodingError escaped the client as a traceback at every check."""

    async def plain(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:  # streamed, decoded when read, as off the network
            yield b'{"balance": "1.00"}'

        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=body())

    recorder = Recorder(plain)
    async with recorder.client() as client:
        with pytest.raises(SmscProtocolError, match="Content-Encoding does not decode") as caught:
            await client.fetch_balance(CREDS)
    assert recorder.hosts == ["smsc.ru"]
    assert str(caught.value).startswith("smsc.ru answered HTTP 200 with")
    assert_no_secret(caught.value)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"", 200, "an empty body"),
        (b"  \n", 200, "an empty body"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", 200, "an HTML page"),
        (b"<html>Not Found</html>", 404, "HTTP 404 with an HTML page"),
        (b"%%garbage%%", 200, "not JSON"),
        (b"100.00", 200, "not an object"),
        (b"0", 200, "not an object"),
        (b'["balance", "1"]', 200, "not an object"),
        (b"\xff\xfe\x00garbage", 200, "not JSON"),
        (b"[" * 100_000, 200, "not JSON"),
        (b'{"balance": NaN}', 200, "not JSON"),
        (b'{"currency": "RUB"}', 200, "without a balance"),
        (b"{}", 200, "without a balance"),
        (b'{"balance": ""}', 200, "balance that is not a number"),
        (b'{"balance": null}', 200, "balance that is not a number"),
        (b'{"balance": true}', 200, "balance that is not a number"),
        (b'{"balance": "12,50"}', 200, "balance that is not a number"),
        (b'{"balance": "NaN"}', 200, "balance that is not a number"),
        (b'{"balance": "Infinity"}', 200, "balance that is not a number"),
        (b'{"balance": "1e3"}', 200, "balance that is not a number"),
        ('{"balance": "\u0661\u0662"}'.encode(), 200, "balance that is not a number"),
        (b'{"balance": 1e3}', 200, "balance that is not a number"),
        (b'{"balance": "1.00", "credit": "lots"}', 200, "credit that is not a number"),
        (b'{"balance": "1.00", "currency": 643}', 200, "currency that is not text"),
        # What the database could not store (the write of a whole batch of checks failed), or
        # HTML in every message showing it.
        (b'{"balance": "1.00", "currency": "RUBLES-AND"}', 200, "currency that is not 8 letters"),
        (b'{"balance": "1.00", "currency": "<b>"}', 200, "currency that is not 8 letters"),
        (b'{"balance": "1.00", "currency": "US D"}', 200, "currency that is not 8 letters"),
        (b'{"balance": "' + b"9" * 19 + b'"}', 200, "balance that is not a number"),
        (b'{"balance": ' + b"9" * 40 + b"}", 200, "balance that is not a number"),
        (b'{"balance": "1.' + b"0" * 11 + b'"}', 200, "balance that is not a number"),
        (b'{"balance": "1.00", "credit": "' + b"9" * 60 + b'"}', 200, "credit that is not"),
        (b'{"error": "who knows"}', 200, "without an error code"),
        (b'{"error": "x", "error_code": true}', 200, "without an error code"),
        ('{"error": "x", "error_code": "\u00b2"}'.encode(), 200, "without an error code"),
    ],
)
async def test_malformed_replies_are_protocol_errors(
    body: bytes, status: int, message: str
) -> None:
    recorder = Recorder(reply(body, status))
    async with recorder.client() as client:
        with pytest.raises(SmscProtocolError, match=message) as caught:
            await client.fetch_balance(CREDS)
    assert recorder.hosts == ["smsc.ru"]  # not a network failure: no backup tried
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None  # the decode error holds the body: left behind
    assert_no_secret(caught.value)
