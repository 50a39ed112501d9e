"""Proxies the bot's HTTP clients may go through (TELEGRAM_PROXY, SMSC_PROXY): their URLs as the
settings take them, and what their library (aiohttp-socks) raises when one fails, which callers
treat as any network failure."""

from __future__ import annotations

from asyncio import IncompleteReadError
from urllib.parse import unquote, urlsplit

from aiohttp_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError

# What aiohttp-socks speaks: an HTTP proxy is asked to CONNECT; host names are resolved by the
# proxy (socks4 as SOCKS4a).
SCHEMES = ("http", "socks5", "socks4")
LOGIN_LIMIT = 255  # SOCKS5's, for a user and for a password (RFC 1929)
# IncompleteReadError: the proxy hung up before its handshake's answer was whole;
# UnicodeDecodeError: a SOCKS5 answer naming its address in bytes that are no text.
ERRORS = (
    ProxyConnectionError,
    ProxyError,
    ProxyTimeoutError,
    IncompleteReadError,
    UnicodeDecodeError,
)


def refusal(url: str, encoding_hint: str) -> str | None:
    """Why the proxy library would refuse the URL (at the first request, with a traceback), in
    words that quote none of it; None if it is usable. Checked at start, all of it."""
    not_a_proxy = (
        "not a proxy URL; e.g. socks5://user:password@proxy:1080 or "
        f"http://proxy:3128 (a port is required; {encoding_hint})"
    )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a netloc urlsplit refuses (a full-width @ in it), a port not a number:
        return not_a_proxy  # their texts quote the URL's, password and all
    # A path, query or fragment: a password's unencoded / ? or # cut the URL short.
    if (
        parts.scheme not in SCHEMES
        or not parts.hostname
        or not port
        or parts.path.strip("/")
        or parts.query
        or parts.fragment
    ):
        return not_a_proxy
    user, secret = unquote(parts.username or ""), unquote(parts.password or "")
    if parts.scheme == "socks4" and (user or secret):
        return "a SOCKS4 proxy takes no user or password here: socks4://host:port"
    if bool(user) != bool(secret):
        return "give the proxy both its user and its password (user:password@)"
    if not (user + secret).isascii() or ":" in user or max(len(user), len(secret)) > LOGIN_LIMIT:
        return (
            f"the proxy's user and password must be ASCII, {LOGIN_LIMIT} characters at most, "
            "the user without ':'"
        )
    return None


def failure(error: BaseException) -> str:
    """An error of ERRORS in a log line's words. Their texts name the proxy's host and port, or
    quote its answer (no password), whose control characters a terminal would act on."""
    said = "".join(c if c.isprintable() else "?" for c in str(error))
    return f"proxy: {type(error).__name__}: {said}"
