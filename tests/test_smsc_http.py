"""The SMSC client and the guard over real HTTP, against the fake SMSC in tests/fake_smsc/."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import pytest

from bot.smsc.client import Balance, Credentials, SmscClient
from bot.smsc.errors import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscProtocolError,
    SmscUnavailable,
)
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import AuthChecksPaused, CredentialsRejected, SitePaused
from tests.fake_proxy import FAILURES, FakeProxy, failing
from tests.fake_smsc import FakeSmsc

PASSWORD = "alice-s3cret&psw="
APIKEY = "bob-k3y-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeSmsc]:
    with FakeSmsc() as smsc:
        smsc.add_account("alice", PASSWORD, balance="123.45", currency="RUB")
        smsc.add_account("bob", "bob-pw", "0.10", credit="10.00", currency="KZT", apikey=APIKEY)
        yield smsc


@pytest.fixture
def backup() -> Iterator[FakeSmsc]:
    with FakeSmsc() as smsc:
        smsc.add_account("alice", PASSWORD, balance="99.00", currency="RUB")
        yield smsc


@pytest.fixture
async def client(fake: FakeSmsc, backup: FakeSmsc) -> AsyncIterator[SmscClient]:
    async with SmscClient(timeout=0.5, backups={fake.url: [backup.url]}) as smsc:
        yield smsc


def alice(fake: FakeSmsc, password: str = PASSWORD) -> Credentials:
    return Credentials(fake.url, "alice", password)


async def test_login_and_password(fake: FakeSmsc, client: SmscClient) -> None:
    balance = await client.fetch_balance(alice(fake))
    assert balance == Balance(Decimal("123.45"), Decimal(0), "RUB")
    assert [(r.login, r.fmt, r.outcome) for r in fake.requests] == [("alice", 3, "ok")]


async def test_apikey_with_credit(fake: FakeSmsc, client: SmscClient) -> None:
    balance = await client.fetch_balance(Credentials(fake.url, None, APIKEY))
    assert balance == Balance(Decimal("0.10"), Decimal("10.00"), "KZT")
    assert str(balance.balance) == "0.10"
    assert [r.login for r in fake.requests] == ["bob"]


async def test_a_new_balance_is_seen(fake: FakeSmsc, client: SmscClient) -> None:
    fake.set_balance("alice", "-5.50", credit="20.00")
    balance = await client.fetch_balance(alice(fake))
    assert (balance.balance, balance.credit) == (Decimal("-5.50"), Decimal("20.00"))


async def test_a_wrong_password_is_sent_once(fake: FakeSmsc, client: SmscClient) -> None:
    guard = BalanceGuard(client)
    wrong = alice(fake, "typo")
    with pytest.raises(SmscAuthError) as first:
        await guard.balance(wrong)
    assert type(first.value) is SmscAuthError
    for _ in range(3):
        with pytest.raises(CredentialsRejected):
            await guard.balance(wrong)
    assert [r.outcome for r in fake.requests_for("alice")] == ["error:2"]
    assert (await guard.balance(alice(fake))).fresh


async def test_wrong_passwords_never_get_the_ip_blocked(fake: FakeSmsc, client: SmscClient) -> None:
    guard = BalanceGuard(client, cache_seconds=0)
    await guard.balance(alice(fake))
    logins = [f"user{i}" for i in range(8)]
    answers = await asyncio.gather(
        *(guard.balance(Credentials(fake.url, login, "guess")) for login in logins),
        return_exceptions=True,
    )
    assert [type(answer) for answer in answers] == [SmscAuthError] * 3 + [AuthChecksPaused] * 5
    assert [r.outcome for r in fake.requests] == ["ok"] + ["error:2"] * 3
    # The account monitored all along is still checked, and SMSC never blocked the bot.
    assert (await guard.balance(alice(fake))).fresh


async def test_a_burst_stays_within_the_limit(fake: FakeSmsc, client: SmscClient) -> None:
    fake.latency = 0.01
    guard = BalanceGuard(client, cache_seconds=0)

    async def caller(delay: float) -> BalanceResult:
        await asyncio.sleep(delay)
        return await guard.balance(alice(fake))

    results = await asyncio.gather(*(caller(i * 0.005) for i in range(50)))
    assert all(isinstance(result, BalanceResult) for result in results)
    assert all(result.balance.balance == Decimal("123.45") for result in results)
    requests = fake.requests_for("alice")
    assert 2 <= len(requests) <= 10
    assert sum(result.fresh for result in results) >= len(requests)
    assert fake.max_in_window("alice") <= 10
    assert fake.max_concurrency_seen["alice"] == 1
    assert {r.outcome for r in requests} == {"ok"}


async def test_a_hanging_site_times_out(fake: FakeSmsc) -> None:
    fake.fault = "hang"
    async with SmscClient(timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(SmscUnavailable, match="Timeout"):
            await client.fetch_balance(alice(fake))
    assert time.monotonic() - started < 1.5
    fake.fault = None


@pytest.mark.parametrize("fault", ["garbage", "html", "empty", "gzip"])
async def test_malformed_answers(
    fake: FakeSmsc, backup: FakeSmsc, client: SmscClient, fault: str
) -> None:
    fake.fault = fault
    with pytest.raises(SmscProtocolError):
        await client.fetch_balance(alice(fake))
    assert not backup.requests


async def test_no_backup_after_a_5xx(fake: FakeSmsc, backup: FakeSmsc, client: SmscClient) -> None:
    """SMSC may have counted the request (a wrong password toward its IP block): not sent twice."""
    fake.fault = "5xx"
    with pytest.raises(SmscUnavailable, match=r"HTTP 503$"):
        await client.fetch_balance(alice(fake))
    assert [r.outcome for r in fake.requests] == ["5xx"]
    assert not backup.requests


async def test_failover_when_the_handshake_times_out(backup: FakeSmsc) -> None:
    """A host taking connections but never its TLS handshake: the request was never sent, so
    the backup is asked, within the attempt's timeout."""
    taken: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda _, writer: taken.append(writer), "127.0.0.1", 0)
    mute = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with SmscClient(timeout=0.5, backups={mute: [backup.url]}) as client:
            started = time.monotonic()
            balance = await client.fetch_balance(Credentials(mute, "alice", PASSWORD))
        assert balance.balance == Decimal("99.00")
        assert time.monotonic() - started < 1
    finally:
        for writer in taken:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_failover_when_the_site_is_down(
    fake: FakeSmsc, backup: FakeSmsc, client: SmscClient
) -> None:
    fake.stop()
    assert (await client.fetch_balance(alice(fake))).balance == Decimal("99.00")
    backup.stop()
    with pytest.raises(SmscUnavailable, match=r"ClientConnectorError.*ClientConnectorError"):
        await client.fetch_balance(alice(fake))


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 5O2 Bad Gateway\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nnot a header\r\nContent-Length: 2\r\n\r\n{}",
        b"<html>login=alice&psw=alice-s3cret</html>\r\n\r\n",
    ],
    ids=["status line", "header line", "not http"],
)
async def test_unavailable_when_the_site_does_not_speak_http(
    fake: FakeSmsc, backup: FakeSmsc, answer: bytes
) -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    broken = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        async with SmscClient(timeout=0.5, backups={broken: [backup.url]}) as client:
            with pytest.raises(SmscUnavailable) as caught:
                await client.fetch_balance(Credentials(broken, "alice", PASSWORD))
        assert str(caught.value) == f"SMSC unreachable: {broken[7:]}: ClientResponseError"
        assert not backup.requests  # it had the request
    finally:
        server.close()
        await server.wait_closed()


async def test_no_failover_on_an_api_error(
    fake: FakeSmsc, backup: FakeSmsc, client: SmscClient
) -> None:
    with pytest.raises(SmscAuthError):
        await client.fetch_balance(alice(fake, "typo"))
    assert not backup.requests


async def test_an_ip_block_pauses_the_site(fake: FakeSmsc, client: SmscClient) -> None:
    guard = BalanceGuard(client)
    fake.block_ip()
    with pytest.raises(SmscIpBlocked):
        await guard.balance(alice(fake))
    with pytest.raises(SitePaused):
        await guard.balance(Credentials(fake.url, None, APIKEY))
    assert [r.outcome for r in fake.requests] == ["error:4"]


async def test_no_secret_in_logs_or_errors(
    fake: FakeSmsc, client: SmscClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    guard = BalanceGuard(client)
    await guard.balance(alice(fake))
    await guard.balance(Credentials(fake.url, None, APIKEY))
    errors: list[SmscError] = []
    for creds in (alice(fake, f"{PASSWORD}-typo"), alice(fake, f"{PASSWORD}-typo")):
        with pytest.raises(SmscError) as caught:
            await guard.balance(creds)
        errors.append(caught.value)
    fake.fault = "5xx"
    with pytest.raises(SmscError) as caught:
        await client.fetch_balance(Credentials(fake.url, "bob", "bob-pw"))
    errors.append(caught.value)

    assert caplog.records
    texts = [record.getMessage() for record in caplog.records]
    texts += [text for error in errors for text in (str(error), repr(error))]
    for secret in (PASSWORD, APIKEY, "bob-pw"):
        assert not [text for text in texts if secret in text]


async def test_with_a_proxy_every_request_goes_through_it(fake: FakeSmsc) -> None:
    with FakeProxy("ops", "pr0xy-pa55") as proxy:
        async with SmscClient(timeout=2, proxy_url=proxy.url) as client:
            balance = await client.fetch_balance(alice(fake))
    assert balance.balance == Decimal("123.45")
    assert proxy.tunnels == [fake.url.removeprefix("http://")]


@pytest.mark.parametrize(("fault", "scheme"), FAILURES)
async def test_a_failing_proxy_is_smsc_unreachable_naming_no_password(
    fake: FakeSmsc, backup: FakeSmsc, fault: str, scheme: str
) -> None:
    """A check that fails as any outage does (the backup tried, then SmscUnavailable), where
    the proxy library's own errors escaped as tracebacks."""
    with failing(fault, scheme) as url:
        backups = {fake.url: [backup.url]}
        async with SmscClient(timeout=2, backups=backups, proxy_url=url) as client:
            with pytest.raises(SmscUnavailable) as caught:
                await client.fetch_balance(alice(fake))
    assert str(caught.value).count("127.0.0.1") == 2 and "pa55" not in str(caught.value)
    assert not fake.requests and not backup.requests
