"""The proxies' URLs as the settings take them (bot.proxy), and their failures in a log's words."""

from __future__ import annotations

import pytest
from aiohttp_socks import ProxyError

from bot import proxy

HINT = "encode them"


@pytest.mark.parametrize(
    "url",
    [
        "socks5://proxy:1080",
        "socks4://proxy.example:1080",
        "http://ops:pr0xy%40pa55@10.0.0.1:3128/",
        "HTTP://[::1]:3128",
    ],
)
def test_what_the_proxy_library_takes_is_usable(url):
    assert proxy.refusal(url, HINT) is None


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://proxy:3128", "not a proxy URL"),
        ("socks5h://proxy:1080", "not a proxy URL"),
        ("socks5://proxy", "a port is required"),
        ("http://proxy:0", "not a proxy URL"),
        ("socks5://ops:1080#pa55@proxy:1080", "encode them"),  # "#" cut the password short
        ("socks5://ops:pa55/word@proxy:1080", "not a proxy URL"),
        ("http://ops@proxy:3128", "both its user and its password"),
        ("http://:pa55word@proxy:3128", "both its user and its password"),
        ("http://a%3Ab:pa55word@proxy:3128", "the user without ':'"),
        ("socks5://ops:%D0%BF%D0%B0%D1%80%D0%BE%D0%BB%D1%8C@proxy:1080", "must be ASCII"),
        (f"socks5://ops:{'p' * 256}@proxy:1080", "255 characters at most"),
        ("socks4://ops:pa55word@proxy:1080", "takes no user or password"),  # sent none of them
        # A full-width @: urlsplit's error would quote the user, the password and the host.
        ("socks5://ops:pa55＠word@proxy:1080", "not a proxy URL"),
    ],
)
def test_what_it_would_refuse_at_the_first_request_is_refused_now(url, words):
    why = proxy.refusal(url, HINT)
    assert why is not None and words in why
    assert "pa55" not in why and "ops" not in why


def test_a_failure_in_words_carries_no_terminal_control():
    said = proxy.failure(ProxyError("Invalid status line: \x05\x1b[31mX"))
    assert said == "proxy: ProxyError: Invalid status line: ??[31mX"
