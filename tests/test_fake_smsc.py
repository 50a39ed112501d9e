"""Tests of the fake SMSC balance server itself, over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fake_smsc import FakeSmsc

BALANCE = "/sys/balance.php"


@pytest.fixture
def smsc() -> Iterator[FakeSmsc]:
    with FakeSmsc(window=0.5, max_per_window=3, auth_errors_to_block=3) as fake:
        fake.add_account("alice", "secret", balance="123.45", credit="0.00", currency="RUB")
        fake.add_account("bob", "pw", balance="84.75", credit="10.00", currency="KZT", apikey="K1")
        yield fake


@pytest.fixture
def client(smsc: FakeSmsc) -> Iterator[httpx.Client]:
    # Plain HTTP: verify=False only skips loading the CA bundle (30 ms per client).
    with httpx.Client(base_url=smsc.url, timeout=5, verify=False) as http:
        yield http


def get(client: httpx.Client, **params: str) -> str:
    response = client.get(BALANCE, params=params)
    assert response.status_code == 200
    return response.text


@pytest.mark.parametrize(
    ("login", "params", "expected"),
    [
        ("alice", {}, "123.45"),
        ("alice", {"cur": "1"}, "123.45 RUB"),
        ("bob", {"cur": "1"}, "84.75 KZT"),
        ("alice", {"fmt": "1"}, "123.45"),
        ("alice", {"fmt": "1", "cur": "1"}, "123.45,RUB"),
        ("bob", {"fmt": "1", "cur": "1"}, "84.75,10.00,KZT"),
        ("alice", {"fmt": "2"}, "<result><balance>123.45</balance></result>"),
        (
            "alice",
            {"fmt": "2", "cur": "1"},
            "<result><balance>123.45</balance><currency>RUB</currency></result>",
        ),
        (
            "bob",
            {"fmt": "2", "cur": "1"},
            "<result><balance>84.75</balance><credit>10.00</credit>"
            "<currency>KZT</currency></result>",
        ),
        ("alice", {"fmt": "3"}, '{"balance": "123.45"}'),
        ("alice", {"fmt": "3", "cur": "1"}, '{"balance": "123.45", "currency": "RUB"}'),
        (
            "bob",
            {"fmt": "3", "cur": "1"},
            '{"balance": "84.75", "credit": "10.00", "currency": "KZT"}',
        ),
    ],
)
def test_success_formats(
    client: httpx.Client, login: str, params: dict[str, str], expected: str
) -> None:
    password = {"alice": "secret", "bob": "pw"}[login]
    assert get(client, login=login, psw=password, **params) == expected


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("0", "ERROR = 2 (authorise error)"),
        ("1", "0,-2"),
        ("2", "<result><error>authorise error</error><error_code>2</error_code></result>"),
        ("3", '{"error": "authorise error", "error_code": 2}'),
    ],
)
def test_error_formats(client: httpx.Client, fmt: str, expected: str) -> None:
    assert get(client, login="alice", psw="wrong", fmt=fmt) == expected


def test_parameter_errors_and_apikey(smsc: FakeSmsc, client: httpx.Client) -> None:
    assert get(client) == "ERROR = 1 (parameters error)"
    assert get(client, login="alice") == "ERROR = 1 (parameters error)"
    assert get(client, login="alice", psw="secret", fmt="7") == "ERROR = 1 (parameters error)"
    assert get(client, apikey="K1", fmt="3") == '{"balance": "84.75"}'
    assert get(client, apikey="nope", fmt="1") == "0,-2"
    assert [(r.login, r.outcome) for r in smsc.requests] == [
        (None, "error:1"),
        ("alice", "error:1"),
        ("alice", "error:1"),
        ("bob", "ok"),
        (None, "error:2"),
    ]


def test_post_form_and_set_balance(smsc: FakeSmsc, client: httpx.Client) -> None:
    smsc.set_balance("alice", "-5.10", credit="50.00")
    response = client.post(
        BALANCE, data={"login": "alice", "psw": "secret", "fmt": "1", "cur": "1"}
    )
    assert response.text == "-5.10,50.00,RUB"


def test_auth_errors_block_ip_until_reset(smsc: FakeSmsc, client: httpx.Client) -> None:
    for _ in range(3):
        assert get(client, login="alice", psw="wrong", fmt="1") == "0,-2"
    assert get(client, login="alice", psw="secret") == "ERROR = 4 (ip is blocked)"
    smsc.reset()
    assert smsc.requests == []
    assert get(client, login="alice", psw="secret") == "123.45"
    smsc.block_ip()
    assert get(client, login="alice", psw="secret", fmt="3") == (
        '{"error": "ip is blocked", "error_code": 4}'
    )


def test_allow_list_is_an_auth_error(smsc: FakeSmsc, client: httpx.Client) -> None:
    smsc.allowed_ips["alice"] = {"10.0.0.1"}
    assert get(client, login="alice", psw="secret", fmt="1") == "0,-2"
    smsc.allowed_ips["alice"].add("127.0.0.1")
    assert get(client, login="alice", psw="secret", fmt="1") == "123.45"


def test_rate_window_counts_attempts(smsc: FakeSmsc, client: httpx.Client) -> None:
    answers = [get(client, login="alice", psw="secret", fmt="1") for _ in range(5)]
    assert answers == ["123.45"] * 3 + ["0,-9"] * 2
    assert get(client, apikey="K1") == "84.75"  # limits are per login
    time.sleep(0.55)
    assert get(client, login="alice", psw="secret", fmt="1") == "123.45"
    assert smsc.max_in_window("alice", 0.5) == 5
    assert smsc.max_in_window("alice", 10) == 6
    assert len(smsc.requests_for("bob")) == 1


async def test_latency_is_async_and_concurrency_is_limited() -> None:
    with FakeSmsc(max_concurrent=4, max_per_window=100) as smsc:
        smsc.add_account("alice", "secret")
        smsc.latency = 0.3
        async with httpx.AsyncClient(base_url=smsc.url, timeout=5, verify=False) as http:
            started = time.monotonic()
            replies = await asyncio.gather(
                *(http.get(BALANCE, params={"login": "alice", "psw": "secret"}) for _ in range(6))
            )
            elapsed = time.monotonic() - started
    # Six requests with 0.3 s latency served in parallel: one after another take 1.8 s (the
    # margin is for a loaded machine: 1.09 s was seen under the whole suite).
    assert elapsed < 1.5
    texts = sorted(r.text for r in replies)
    assert texts == ["100.00"] * 3 + ["ERROR = 9 (too many concurrent requests)"] * 3
    assert smsc.max_concurrency_seen["alice"] == 6


@pytest.mark.parametrize(
    ("fault", "status", "body"),
    [("5xx", 503, None), ("garbage", 200, "%%garbage%%"), ("html", 200, None), ("empty", 200, "")],
)
def test_faults(
    smsc: FakeSmsc, client: httpx.Client, fault: str, status: int, body: str | None
) -> None:
    smsc.fault = fault
    response = client.get(BALANCE, params={"login": "alice", "psw": "secret"})
    assert response.status_code == status
    if body is not None:
        assert response.text == body
    if fault == "html":
        assert response.text.startswith("<!DOCTYPE html>")
    assert [r.outcome for r in smsc.requests] == [fault]
    smsc.fault = None
    assert get(client, login="alice", psw="secret") == "123.45"


def test_hang_and_stop(smsc: FakeSmsc, client: httpx.Client) -> None:
    with pytest.raises(ValueError):
        smsc.fault = "typo"
    smsc.fault = "hang"
    with pytest.raises(httpx.ReadTimeout):
        client.get(BALANCE, params={"login": "alice", "psw": "secret"}, timeout=0.2)
    assert smsc.requests_for("alice")[0].outcome == "hang"
    smsc.stop()  # returns promptly although a request is still hanging
    with pytest.raises(httpx.ConnectError):
        client.get(BALANCE, params={"login": "alice", "psw": "secret"})
