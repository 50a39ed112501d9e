"""The SMSC client's unit tests' credentials, and httpx.MockTransport standing in for SMSC:
a `Recorder` answering with a handler (`reply`, `by_host`, `fail_with`), and `assert_no_secret`.
Plain helpers imported by tests/test_smsc*.py; no fixtures, so not a plugin."""

from __future__ import annotations

import json
import traceback
from collections.abc import Awaitable, Callable
from urllib.parse import quote, quote_plus

import httpx

from bot.smsc.client import Balance, Credentials, SmscClient

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


def by_host(**answers: Handler) -> Handler:
    return lambda request: answers[request.url.host.replace(".", "_")](request)


def fail_with(error: type[httpx.TransportError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        # httpx puts the URL in some messages; a leak via the body is simulated here too.
        raise error(f"failed {request.url} {request.content!r}", request=request)

    return handler
