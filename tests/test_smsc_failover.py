"""Unit tests of the SMSC client's failover to backup sites, of its timeout and of the
secrets kept out of its errors and logs, with httpx.MockTransport standing in for SMSC."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from urllib.parse import parse_qs

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from bot.smsc.client import Credentials, SmscClient
from bot.smsc.errors import SmscApiError, SmscError, SmscUnavailable
from tests.smsc_fixtures import (
    CREDS,
    KEY_CREDS,
    PASSWORD,
    Handler,
    Recorder,
    assert_no_secret,
    by_host,
    fail_with,
    fetch,
    reply,
)

# ----- failover ------------------------------------------------------------------------


def fail_from(cause: Exception) -> Handler:
    """Fails as httpx-aiohttp does: aiohttp's error wrapped, here in its loose ConnectTimeout."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout(str(cause), request=request) from cause

    return handler


@pytest.mark.parametrize(
    "primary",
    [
        fail_with(httpx.ConnectError),
        fail_with(httpx.ConnectTimeout),
        fail_from(
            aiohttp.ClientConnectorError(ConnectionKey("smsc.ru", 443, *[None] * 6), OSError())
        ),
        fail_from(aiohttp.ConnectionTimeoutError()),
    ],
    ids=["connect error", "connect timeout", "aiohttp connector", "aiohttp connect timeout"],
)
async def test_failover_to_the_documented_backup(primary: Handler) -> None:
    recorder = Recorder(by_host(smsc_ru=primary, www2_smsc_ru=reply({"balance": "5.00"})))
    async with recorder.client() as client:
        balance = await client.fetch_balance(CREDS)
    assert balance.balance == Decimal("5.00")
    assert recorder.hosts == ["smsc.ru", "www2.smsc.ru"]
    form = parse_qs(recorder.requests[1].content.decode())
    assert form["psw"] == [PASSWORD]


@pytest.mark.parametrize(
    "primary",
    [
        reply(b"Service Unavailable", 503),
        reply(b"<html>oops</html>", 500),
        fail_with(httpx.ReadTimeout),
        fail_with(httpx.RemoteProtocolError),
        fail_from(aiohttp.ServerDisconnectedError()),
    ],
    ids=["503", "500", "read timeout", "protocol error", "disconnected"],
)
async def test_no_backup_once_smsc_may_have_had_the_request(primary: Handler) -> None:
    """SMSC counts every request it gets: a wrong password sent again to the backup counted
    twice toward its IP block (at 5), where the bot's own limit counted once (3 a site)."""
    recorder = Recorder(by_host(smsc_ru=primary, www2_smsc_ru=reply({"balance": "5.00"})))
    async with recorder.client() as client:
        with pytest.raises(
            SmscUnavailable, match=r"^SMSC unreachable: smsc\.ru: [\w ]+$"
        ) as caught:
            await client.fetch_balance(CREDS)
    assert recorder.hosts == ["smsc.ru"]
    assert_no_secret(caught.value)


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
            smsc_ru=fail_with(httpx.ConnectError),
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
    assert recorder.hosts == ["smsc.ru"]  # SMSC may have had it: no backup
    assert_no_secret(caught.value)


# ----- secrets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler",
    [
        fail_with(httpx.ConnectError),
        fail_with(httpx.ConnectTimeout),
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
