"""What the fake SMSC answers: the faults, the error texts, the four reply formats, and the
account whose balance a reply carries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from aiohttp import web

# "gzip": a Content-Encoding: gzip header on a plain body, as a misconfigured proxy sends.
FAULTS = ("5xx", "garbage", "html", "empty", "hang", "gzip")

ERROR_TEXTS = {
    1: "parameters error",
    2: "authorise error",
    4: "ip is blocked",
    9: "duplicate request, wait a minute",
}
TOO_MANY_CONCURRENT = "too many concurrent requests"

HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
    "<body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"
)


@dataclass(slots=True)
class _Account:
    password: str
    balance: str
    credit: str
    currency: str


def _parse_fmt(raw: str | None) -> int | None:
    """``fmt`` as an int (default 0), or None when it is not one of 0-3."""
    if raw is None or raw == "":
        return 0
    return int(raw) if raw in ("0", "1", "2", "3") else None


def _check_amount(*amounts: str) -> None:
    """Reject typos in balances early: raises decimal.InvalidOperation."""
    for amount in amounts:
        Decimal(amount)


def _format_balance(fmt: int, cur: bool, account: _Account) -> str:
    balance, currency = account.balance, account.currency
    credit = account.credit if Decimal(account.credit) != 0 else None
    if fmt == 0:
        return f"{balance} {currency}" if cur else balance
    if fmt == 1:
        if not cur:
            return balance
        return f"{balance},{credit},{currency}" if credit else f"{balance},{currency}"
    if fmt == 2:
        xml = f"<balance>{escape(balance)}</balance>"
        if cur:
            if credit:
                xml += f"<credit>{escape(credit)}</credit>"
            xml += f"<currency>{escape(currency)}</currency>"
        return f"<result>{xml}</result>"
    data = {"balance": balance}
    if cur:
        if credit:
            data["credit"] = credit
        data["currency"] = currency
    return json.dumps(data)


def _error_response(fmt: int, code: int, text: str) -> web.Response:
    if fmt == 0:
        body = f"ERROR = {code} ({text})"
    elif fmt == 1:
        body = f"0,-{code}"
    elif fmt == 2:
        body = f"<result><error>{escape(text)}</error><error_code>{code}</error_code></result>"
    else:
        body = json.dumps({"error": text, "error_code": code})
    return _text_response(fmt, body)


def _text_response(fmt: int, body: str) -> web.Response:
    content_type = {2: "text/xml", 3: "application/json"}.get(fmt, "text/plain")
    return web.Response(text=body, content_type=content_type, charset="utf-8")


def _fault_response(fault: str) -> web.Response:
    if fault == "5xx":
        return web.Response(status=503, text="Service Unavailable")
    if fault == "garbage":
        return web.Response(text="%%garbage%%")
    if fault == "html":
        return web.Response(text=HTML_PAGE, content_type="text/html")
    if fault == "gzip":
        return web.Response(body=b'{"balance": "1.00"}', headers={"Content-Encoding": "gzip"})
    return web.Response(body=b"")  # "empty"
