"""SMSC's sites: the known ones by name, and the base URLs of the others."""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

SITES: dict[str, str] = {
    name: f"https://{name}"
    for name in ("smsc.ru", "smsc.kz", "smsc.ua", "smsc.tj", "smsc.uz", "smscentre.com")
}


# Remembered: every check builds its credentials again, and parsing the URL was ≈ 5 µs of
# each. Only valid sites are kept (a refusal raises), a few hundred at most.
@functools.lru_cache(maxsize=256)
def site_url(site: str) -> str:
    """The base URL, without a final "/", for a known site name ("smsc.kz") or an http(s) URL.

    Raises ValueError otherwise. The message does not repeat the value: a user who pasted a
    password into the wrong field should not find it in the logs.
    """
    name = site.strip().rstrip("/").lower()
    if name in SITES:
        return SITES[name]
    parts = urlsplit(site.strip())
    try:
        parts.port  # noqa: B018 -- raises ValueError on a malformed port
    except ValueError:
        parts = parts._replace(netloc="")
    # "user:password@host" is refused: credentials go in the request, never in the URL.
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.query
        or parts.fragment
    ):
        known = ", ".join(SITES)
        raise ValueError(f"SMSC site must be one of {known} or an http(s) base URL")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path.rstrip('/')}"


def site_label(site: str) -> str:
    """`smsc.kz` for a known site, the host (and port) otherwise."""
    for name, url in SITES.items():
        if url == site:
            return name
    return site.split("://", 1)[-1]


def topup_url(site_base_url: str) -> str:
    """The site's payment page, where the account is topped up."""
    return f"{site_url(site_base_url)}/payment/"
