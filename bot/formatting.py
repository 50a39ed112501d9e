"""Numbers and ages the way each language writes them, and amounts the way people type them."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from babel.dates import format_timedelta
from babel.numbers import format_decimal

# Spaces people and Telegram clients put between thousands: plain, no-break, narrow no-break, thin.
_GROUP_SPACES = re.compile(r"[ \u00a0\u202f\u2009]")
# ASCII digits only: str.isdigit() and `\d` also take "²" (which int() refuses) and "٣".
_AMOUNT = re.compile(r"[0-9]+(?:[.,][0-9]+)?")
_COUNT = re.compile(r"[0-9]{1,9}")
MAX_AMOUNT = Decimal("1000000000")


def parse_amount(text: str) -> Decimal:
    """`500`, `500.5`, `500,5` and `1 000` as a Decimal; ValueError for anything else."""
    compact = _GROUP_SPACES.sub("", text.strip())
    if not _AMOUNT.fullmatch(compact):
        raise ValueError("not an amount")
    try:
        value = Decimal(compact.replace(",", "."))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if value >= MAX_AMOUNT:
        raise ValueError("amount too large")
    return value


def parse_count(text: str, most: int) -> int:
    """A whole number of days, hours or minutes from 1 to `most`; ValueError for anything else."""
    if not _COUNT.fullmatch(text) or not 1 <= int(text) <= most:
        raise ValueError("not a count")
    return int(text)


def format_amount(value: Decimal, locale: str) -> str:
    """At least two decimals, every digit SMSC gave, grouped as the language groups them."""
    return format_decimal(value, format="#,##0.00", locale=locale, decimal_quantization=False)


def format_money(value: Decimal, currency: str | None, locale: str) -> str:
    amount = format_amount(value, locale)
    return f"{amount} {currency}" if currency else amount


def format_age(seconds: float, locale: str) -> str:
    """'5 minutes ago' / '5 минут назад'."""
    return format_timedelta(
        timedelta(seconds=-max(seconds, 1)), add_direction=True, threshold=1.0, locale=locale
    )
