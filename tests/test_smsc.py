"""Unit tests of the SMSC balance client, with httpx.MockTransport standing in for SMSC."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from collections.abc import Awaitable, Callable
from decimal import Decimal
from urllib.parse import parse_qs, quote, quote_plus

import httpx
import pytest

from bot import logs
from bot.smsc.client import (
    Balance,
    Credentials,
    SmscApiError,
    SmscAuthError,
    SmscBadRequest,
    SmscClient,
    SmscError,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.sites import SITES, site_url, topup_url

PASSWORD = "pa55-Wörd&=%"  # characters that URL- and form-encoding must carry intact
APIKEY = "K3y-7f1c0e2d9a"
CREDS = Credentials("https://smsc.ru", "alice", PASSWORD)
KEY_CREDS = Credentials("https://smsc.kz", None, APIKEY)

Handler = Callable[[httpx.Request], Awaitable[httpx.Response] | httpx.Response]


class Recorder:
    """A MockTransport that records requests and answers them with `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[httpx.Request] = []
        self._handler = handler

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        response = self._handler(request)
        if not isinstance(response, httpx.Response):
            response = await response
        return response

    @property
    def hosts(self) -> list[str]:
        return [request.url.host for request in self.requests]

    def client(self, **kwargs: object) -> SmscClient:
        return SmscClient(httpx.MockTransport(self), **kwargs)  # type: ignore[arg-type]


def reply(body: object, status: int = 200) -> Handler:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda request: httpx.Response(status, content=content)


async def fetch(handler: Handler, creds: Credentials = CREDS, **kwargs: object) -> Balance:
    async with Recorder(handler).client(**kwargs) as client:
        return await client.fetch_balance(creds)


def chain(exc: BaseException) -> list[BaseException]:
    """The exception and everything chained to it."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def assert_no_secret(exc: BaseException) -> None:
    """Neither secret, plain or encoded, in the exception or anything chained to it."""
    texts = [text for e in chain(exc) for text in (str(e), repr(e), repr(e.args))]
    texts.append("".join(traceback.format_exception(exc)))
    for secret in (PASSWORD, APIKEY):
        for form in (secret, quote(secret), quote_plus(secret)):
            for text in texts:
                assert form not in text


# ----- sites ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SITES))
def test_known_site_names(name: str) -> None:
    assert site_url(name) == f"https://{name}"
    assert site_url(f" {name.upper()} ") == f"https://{name}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://smsc.ru", "https://smsc.ru"),
        ("https://SMSC.ru/", "https://smsc.ru"),
        ("HTTP://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://proxy.local/smsc/", "http://proxy.local/smsc"),
    ],
)
def test_site_urls_are_normalised(given: str, expected: str) -> None:
    assert site_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "smsc-ru",
        "example.com",
        "ftp://smsc.ru",
        "https://",
        "https://smsc.ru/?login=a",
        "https://smsc.ru:notaport",
        f"https://alice:{PASSWORD}@smsc.ru",
    ],
)
def test_bad_sites_are_refused_without_echo(given: str) -> None:
    with pytest.raises(ValueError, match="SMSC site must be") as caught:
        site_url(given)
    if given:
        assert given not in str(caught.value)
    assert_no_secret(caught.value)


def test_topup_url() -> None:
    assert topup_url("https://smsc.kz") == "https://smsc.kz/payment/"
    assert topup_url("smscentre.com") == "https://smscentre.com/payment/"


# ----- credentials ---------------------------------------------------------------------


def test_credentials_hide_the_secret() -> None:
    for creds in (CREDS, KEY_CREDS):
        assert creds.secret not in repr(creds)
        assert creds.secret not in str(creds)
        assert creds.secret not in creds.fingerprint
        assert creds.secret not in creds.rate_key
    assert "alice" in repr(CREDS)


def test_credentials_keys() -> None:
    assert not CREDS.is_apikey
    assert KEY_CREDS.is_apikey
    assert CREDS.rate_key == "https://smsc.ru|alice"
    assert KEY_CREDS.rate_key.startswith("https://smsc.kz|key:")
    assert len(KEY_CREDS.rate_key.removeprefix("https://smsc.kz|key:")) == 16

    other_password = Credentials("https://smsc.ru", "alice", "other")
    assert other_password.rate_key == CREDS.rate_key
    assert other_password.fingerprint != CREDS.fingerprint
    assert Credentials("smsc.ru/", "alice", PASSWORD).fingerprint == CREDS.fingerprint
    assert Credentials("smsc.kz", "alice", PASSWORD).fingerprint != CREDS.fingerprint
    # The parts are kept apart: moving text between login and secret changes the fingerprint.
    assert (
        Credentials("smsc.ru", "ab", "c").fingerprint
        != Credentials("smsc.ru", "a", "bc").fingerprint
    )


def test_credentials_site_is_normalised_and_checked() -> None:
    assert Credentials("SMSC.UA", "bob", "pw").site == "https://smsc.ua"
    with pytest.raises(ValueError):
        Credentials("nowhere", "bob", "pw")
    with pytest.raises(ValueError) as caught:
        Credentials("smsc.ru", "", PASSWORD)
    assert_no_secret(caught.value)
    with pytest.raises(ValueError):
        Credentials("smsc.ru", "bob", "")


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
    assert masked_when_sent == ["psw=***", "psw=***"]  # the site and its backup


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


async def test_an_error_is_never_a_balance() -> None:
    with pytest.raises(SmscAuthError):
        await fetch(reply({"error": "authorise error", "error_code": 2, "balance": "0"}))


async def test_an_echoed_secret_is_scrubbed_from_the_description() -> None:
    with pytest.raises(SmscAuthError) as caught:
        await fetch(reply({"error": f"bad password {PASSWORD}", "error_code": 2}))
    assert caught.value.description == "bad password ***"
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


# ----- failover ------------------------------------------------------------------------


def by_host(**answers: Handler) -> Handler:
    return lambda request: answers[request.url.host.replace(".", "_")](request)


def fail_with(error: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        # httpx puts the URL in some messages; a leak via the body is simulated here too.
        raise error(f"failed {request.url} {request.content!r}", request=request)

    return handler


@pytest.mark.parametrize(
    "primary",
    [
        reply(b"Service Unavailable", 503),
        reply(b"<html>oops</html>", 500),
        fail_with(httpx.ConnectError),
        fail_with(httpx.ConnectTimeout),
        fail_with(httpx.ReadTimeout),
        fail_with(httpx.RemoteProtocolError),
    ],
)
async def test_failover_to_the_documented_backup(primary: Handler) -> None:
    recorder = Recorder(by_host(smsc_ru=primary, www2_smsc_ru=reply({"balance": "5.00"})))
    async with recorder.client() as client:
        balance = await client.fetch_balance(CREDS)
    assert balance.balance == Decimal("5.00")
    assert recorder.hosts == ["smsc.ru", "www2.smsc.ru"]
    form = parse_qs(recorder.requests[1].content.decode())
    assert form["psw"] == [PASSWORD]


async def test_unavailable_after_the_backups() -> None:
    recorder = Recorder(
        by_host(smsc_kz=fail_with(httpx.ConnectTimeout), www2_smsc_kz=reply(b"", 502))
    )
    async with recorder.client() as client:
        with pytest.raises(SmscUnavailable) as caught:
            await client.fetch_balance(KEY_CREDS)
    assert recorder.hosts == ["smsc.kz", "www2.smsc.kz"]
    assert str(caught.value) == (
        "SMSC unreachable: smsc.kz: ConnectTimeout; www2.smsc.kz: HTTP 502"
    )
    assert_no_secret(caught.value)


async def test_explicit_backups_replace_the_defaults() -> None:
    recorder = Recorder(
        by_host(
            smsc_ru=reply(b"", 503),
            b1_example=fail_with(httpx.ConnectError),
            b2_example=reply({"balance": "7"}),
        )
    )
    backups = {"smsc.ru": ["https://b1.example/", "https://b2.example"]}
    async with recorder.client(backups=backups) as client:
        assert (await client.fetch_balance(CREDS)).balance == 7
    assert recorder.hosts == ["smsc.ru", "b1.example", "b2.example"]


async def test_unknown_sites_have_no_backups() -> None:
    recorder = Recorder(reply(b"", 503))
    async with recorder.client() as client:
        with pytest.raises(SmscUnavailable, match=r"127\.0\.0\.1:9: HTTP 503$"):
            await client.fetch_balance(Credentials("http://127.0.0.1:9", "alice", PASSWORD))
    assert recorder.hosts == ["127.0.0.1"]


@pytest.mark.parametrize("code", [1, 2, 4, 9])
async def test_api_errors_are_not_retried_on_a_backup(code: int) -> None:
    recorder = Recorder(reply({"error": "no", "error_code": code}))
    async with recorder.client() as client:
        with pytest.raises(SmscApiError):
            await client.fetch_balance(CREDS)
    assert recorder.hosts == ["smsc.ru"]


async def test_the_timeout_bounds_a_whole_attempt() -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(10)
        return httpx.Response(200, json={"balance": "1"})

    recorder = Recorder(slow)
    async with recorder.client(timeout=0.05) as client:
        async with asyncio.timeout(2):
            with pytest.raises(SmscUnavailable, match="TimeoutError") as caught:
                await client.fetch_balance(CREDS)
    assert recorder.hosts == ["smsc.ru", "www2.smsc.ru"]
    assert_no_secret(caught.value)


# ----- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [
        fail_with(httpx.ConnectError),
        fail_with(httpx.ReadTimeout),
        reply(b"", 503),
        reply(b"<html></html>"),
        reply({"error": "authorise error", "error_code": 2}),
        reply({"balance": "x"}),
    ],
)
@pytest.mark.parametrize("creds", [CREDS, KEY_CREDS])
async def test_no_secret_in_errors_or_logs(
    handler: Handler, creds: Credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(SmscError) as caught:
        await fetch(handler, creds)
    assert_no_secret(caught.value)
    assert caplog.records  # the client logs each answer; the failover is logged too
    for record in caplog.records:
        assert creds.secret not in record.getMessage()


class ClosingTracked(httpx.MockTransport):
    closed = False

    async def aclose(self) -> None:
        self.closed = True


async def test_an_injected_transport_stays_open() -> None:
    transport = ClosingTracked(reply({"balance": "1"}))
    async with SmscClient(transport) as client:
        await client.fetch_balance(CREDS)
    assert not transport.closed


async def test_an_owned_client_is_closed() -> None:
    client = SmscClient()
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.fetch_balance(CREDS)
