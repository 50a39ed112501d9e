"""Client for SMS Center's balance request (`/sys/balance.php`) on smsc.ru and its sister sites.

It knows nothing of Telegram or storage: given credentials it returns a `Balance` or raises one
of the `SmscError` family (bot.smsc.errors). Secrets never leave it in a repr, a log line or
an exception.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from types import TracebackType
from typing import Any, NoReturn, Self
from urllib.parse import urlsplit

import aiohttp
import httpx
from aiohttp_socks import ProxyConnector
from httpx_aiohttp import AiohttpTransport

from bot import logs, proxy
from bot.smsc.errors import (
    SmscApiError,
    SmscAuthError,
    SmscBadRequest,
    SmscIpBlocked,
    SmscProtocolError,
    SmscRateLimited,
    SmscUnavailable,
)
from bot.smsc.sites import SITES, site_url

log = logging.getLogger(__name__)

USER_AGENT = "smsc-balance-bot"
_HEADERS = {"User-Agent": USER_AGENT}

# SMSC sends amounts as strings like "84.75" or "-3.10"; anything else is not a balance. At
# most 28 digits, Decimal's precision (sums and rates of more would be rounded), which also
# keeps the text within what the database stores (Money, 40 characters).
_AMOUNT = re.compile(r"[+-]?\d{1,18}(?:\.\d{1,10})?", re.ASCII)
# Its currency: "RUB", "KZT"...; letters only (it is shown in HTML messages and charts), as many
# as the database stores.
_CURRENCY_LENGTH = 8


@functools.lru_cache(maxsize=256)
def _endpoint(base: str) -> httpx.URL:
    """The balance URL of a site, parsed once: parsing it again for each request was a tenth
    of the request's CPU in a sweep."""
    return httpx.URL(f"{base}/sys/balance.php")


def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc


def _sha256(*parts: str | None) -> str:
    # JSON keeps the parts apart: ("a", "bc") and ("ab", "c") must not hash alike.
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


@dataclass(frozen=True)
class Credentials:
    """What one balance request is made with: a login and password, or an API key.

    `site` is normalised by `site_url`, so "smsc.ru" and "https://smsc.ru/" are the same site.
    """

    site: str
    login: str | None  # None for API-key credentials
    secret: str = field(repr=False)  # the password, or the API key when login is None

    def __post_init__(self) -> None:
        object.__setattr__(self, "site", site_url(self.site))
        if self.login == "" or not self.secret:
            raise ValueError("SMSC credentials need a login and password, or an API key")

    @cached_property  # asked several times per request by the guard
    def rate_key(self) -> str:
        """What SMSC rate-limits on: the login at this site (an API key stands for its login)."""
        if self.login is None:
            return f"{self.site}|key:{_sha256(self.secret)[:16]}"
        return f"{self.site}|{self.login}"

    @cached_property
    def fingerprint(self) -> str:
        """Identifies these exact credentials (for caches, known-bad sets) without the secret."""
        return _sha256(self.site, self.login, self.secret)


@dataclass(frozen=True)
class Balance:
    """An account's money as SMSC reports it, in the account's currency."""

    balance: Decimal
    credit: Decimal  # zero when SMSC reports none
    currency: str | None


_ERRORS: dict[int, type[SmscApiError]] = {
    1: SmscBadRequest,
    2: SmscAuthError,
    4: SmscIpBlocked,
    9: SmscRateLimited,
}


class SmscClient:
    """Fetches balances; when a site cannot be connected to, it tries the site's backups."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: float = 10.0,
        backups: Mapping[str, Sequence[str]] | None = None,
        proxy_url: str | None = None,
    ) -> None:
        """`proxy_url`: a proxy every request goes through (bot.proxy), unless `transport`."""
        self._owns_transport = transport is None
        if transport is None:
            # httpx's transport over aiohttp's connection pool: httpcore's pool spent ~2 ms of
            # CPU per request at 50 side by side (it re-checks every idle connection's socket
            # for each request), aiohttp's ~0.35 ms.
            transport = AiohttpTransport(client=None if proxy_url is None else _proxied(proxy_url))
        # The transport, not an httpx.AsyncClient over it: the client's cookie jar, header
        # merging and redirect and auth flows cost ~0.2 ms of CPU a request (a third of it in
        # a sweep) for features one form POST to a fixed URL never uses.
        self._transport = transport
        self._closed = False
        # The deadline of a whole attempt: connecting, sending and reading the answer.
        self._timeout = timeout
        # Connecting (TLS and a proxy's handshake included) within half of it (httpx-aiohttp's
        # "pool" is aiohttp's connect timeout): a host that takes no connection then fails
        # before the request was sent, so its backup may be asked.
        self._extensions = {"timeout": {"pool": timeout / 2}}
        if backups is None:
            # SMSC documents www2.smsc.ru as its backup host.
            backups = {url: [f"https://www2.{name}"] for name, url in SITES.items()}
        self._backups = {
            site_url(site): [site_url(backup) for backup in hosts]
            for site, hosts in backups.items()
        }

    async def fetch_balance(self, creds: Credentials) -> Balance:
        if self._closed:
            raise RuntimeError("the SMSC client is closed")
        # Masked in every log line from the moment it is sent, not when credentials are built:
        # anyone may type any word as a password, and most are refused before any request.
        logs.remember(creds.secret)
        # POST keeps the secret out of the URL, so out of every error that quotes the URL.
        if creds.login is None:
            form = {"apikey": creds.secret}
        else:
            form = {"login": creds.login, "psw": creds.secret}
        form |= {"fmt": "3", "cur": "1"}
        failures = []
        for base in [creds.site, *self._backups.get(creds.site, ())]:
            if failures:
                log.warning("SMSC %s; trying the backup %s", failures[-1], _host(base))
            request = httpx.Request(
                "POST", _endpoint(base), data=form, headers=_HEADERS, extensions=self._extensions
            )
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._transport.handle_async_request(request)
                    try:
                        await response.aread()
                    except httpx.DecodingError:
                        # A body its Content-Encoding does not decode (SMSC's or a proxy's
                        # mistake): an answer, if a garbled one, as an HTML page is.
                        raise SmscProtocolError(
                            f"{_answered(response, base)} a body its Content-Encoding does not "
                            "decode"
                        ) from None
                    finally:
                        await response.aclose()
            # aiohttp's own errors where httpx-aiohttp maps none: a reply that is not HTTP (a
            # bad status or header line) is a site failing, as a refused connection is; and so
            # is a proxy failing.
            except (httpx.TransportError, aiohttp.ClientError, TimeoutError, *proxy.ERRORS) as exc:
                failures.append(f"{_host(base)}: {_fault(exc)}")
                # Only a request that never left goes to a backup: SMSC counts every one it
                # got, so a wrong password tried again there would count twice toward its block
                # (a timeout or a bad answer may come after SMSC read the request).
                if _unsent(exc):
                    continue
            else:
                log.debug("SMSC %s answered HTTP %s", _host(base), response.status_code)
                if not response.is_server_error:
                    # An API error is not retried on a backup either.
                    return _parse(response, base, creds.secret)
                failures.append(f"{_host(base)}: HTTP {response.status_code}")
            break
        raise SmscUnavailable(f"SMSC unreachable: {'; '.join(failures)}")

    async def aclose(self) -> None:
        self._closed = True
        if self._owns_transport:
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _proxied(url: str) -> Callable[[], aiohttp.ClientSession]:
    """aiohttp's session through the proxy at `url`, made on first use (in the running loop)."""
    # The certificates trusted as without a proxy (httpx's, which the transport's own uses).
    return lambda: aiohttp.ClientSession(
        connector=ProxyConnector.from_url(url, rdns=True, ssl=httpx.create_ssl_context())
    )


def _unsent(exc: BaseException) -> bool:
    """Whether the request surely never reached the site: connecting failed (DNS, a refused
    connection, TLS, a proxy, the connect timeout). httpx-aiohttp maps aiohttp's errors loosely,
    so the aiohttp error it wraps decides; httpx's own (unwrapped) are raised while connecting."""
    if isinstance(exc, proxy.ERRORS):
        return True
    if not isinstance(exc, httpx.TransportError):
        return False
    if exc.__cause__ is None:
        return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.ProxyError)
    return isinstance(
        exc.__cause__, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, *proxy.ERRORS)
    )


def _fault(exc: BaseException) -> str:
    """What went wrong, by class name only: some messages quote the request. httpx-aiohttp
    maps aiohttp's errors loosely (a refused connection becomes ConnectTimeout), so the
    aiohttp error it wraps, when there is one, names the fault."""
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else None
    return type(cause or exc).__name__


_NOT_JSON = object()


def _answered(response: httpx.Response, base: str) -> str:
    return f"{_host(base)} answered HTTP {response.status_code} with"


def _parse(response: httpx.Response, base: str, secret: str) -> Balance:
    """The balance in `base`'s fmt=3 reply, or the error it carries."""
    where = _answered(response, base)
    body = response.content
    try:
        # parse_float keeps a bare JSON number exact, should SMSC ever send one.
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject)
    except (ValueError, RecursionError):
        # Raised below, outside this block, so the decode error (which holds the whole body)
        # does not ride along as __context__.
        data = _NOT_JSON
    if data is _NOT_JSON:
        if not body.strip():
            raise SmscProtocolError(f"{where} an empty body")
        if body.lstrip()[:1] == b"<":
            raise SmscProtocolError(f"{where} an HTML page, not JSON")
        raise SmscProtocolError(f"{where} a body that is not JSON")
    if not isinstance(data, dict):
        raise SmscProtocolError(f"{where} JSON that is not an object")
    if "error" in data or "error_code" in data:
        code = data.get("error_code")
        if isinstance(code, str) and code.isascii() and code.isdigit():
            code = int(code)
        if not isinstance(code, int) or isinstance(code, bool):
            raise SmscProtocolError(f"{where} an error reply without an error code")
        # The description is SMSC's text; should it ever echo the secret, that stops here.
        description = str(data.get("error", "")).replace(secret, "***")
        raise _ERRORS.get(code, SmscApiError)(code, description)
    if "balance" not in data:
        raise SmscProtocolError(f"{where} JSON without a balance")
    currency = data.get("currency") or None
    if currency is not None and not isinstance(currency, str):
        raise SmscProtocolError(f"{where} a currency that is not text")
    # A longer one failed the database's write of the whole batch of checks it was in; markup
    # broke every message showing it.
    if currency is not None and not (currency.isalpha() and len(currency) <= _CURRENCY_LENGTH):
        raise SmscProtocolError(
            f"{where} a currency that is not {_CURRENCY_LENGTH} letters at most"
        )
    return Balance(
        balance=_amount(data["balance"], f"{where} a balance that is not a number"),
        credit=_amount(data.get("credit", "0"), f"{where} a credit that is not a number"),
        currency=currency,
    )


def _amount(value: Any, error: str) -> Decimal:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value.strip()):
        raise SmscProtocolError(error)
    return Decimal(value.strip())


def _reject(constant: str) -> NoReturn:
    raise ValueError(f"{constant} is not an amount")
