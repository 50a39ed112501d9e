"""Numbers and ages the way each language writes them, amounts the way people type them, and
long texts cut to the sizes Telegram accepts."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from html import escape

from babel import Locale
from babel.dates import format_timedelta
from babel.numbers import parse_pattern

# Spaces people and Telegram clients put between thousands: plain, no-break, narrow no-break, thin.
_GROUP_SPACE = r"[ \u00a0\u202f\u2009]"
# One such space between groups of three digits ("1 000", "12 345 678.50", Russian "1 000,5"),
# and nowhere else: removing every space made the words of "/threshold shop 5 10" the amount
# 510, and the extra arguments of "/anomaly 3 5 00" a minimum of 500.
_SPACE_GROUPS = re.compile(rf"[1-9][0-9]{{0,2}}(?:{_GROUP_SPACE}[0-9]{{3}})+(?:[.,][0-9]+)?")
# Digits after the point an amount may have: SMSC gives two; more is a typing accident, and a
# thousand of them would not fit an answer (nor PostgreSQL's money column).
MAX_DECIMALS = 6
# ASCII digits only: str.isdigit() and `\d` also take "²" (which int() refuses) and "٣".
_AMOUNT = re.compile(rf"[0-9]+(?:[.,][0-9]{{1,{MAX_DECIMALS}}})?")
# Commas between groups of three digits, as English writes thousands ("25,000", "1,234.50", the
# bot's own "25,000.00"): grouping, not a decimal comma, which no sum of money is written with
# three digits after. Read as a decimal comma, "25,000" was stored as 25.
_COMMA_GROUPS = re.compile(r"[1-9][0-9]{0,2}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_COUNT = re.compile(r"[0-9]{1,9}")
MAX_AMOUNT = Decimal("1000000000")
# Characters of users' text an answer quotes back (an unknown account's name, a time zone, an
# administrator's name): nothing the bot knows by name is longer, and a whole message of it
# quoted back would take the answer past Telegram's limit.
ECHO_LIMIT = 40
TEXT_LIMIT, CAPTION_LIMIT = 4096, 1024
# Parsed once: babel parses a pattern given as text, and a locale given by its code, at every
# call, and a /balance formats a few amounts and ages per account.
_AMOUNT_PATTERN = parse_pattern("#,##0.00")
_babel_locale = cache(Locale.parse)
# A date further ahead is written with its year: nearer, its day and month can only be the
# coming ones, where "17 Apr" 500 days ahead read as the coming April.
YEARLESS_AHEAD = timedelta(days=300)


def parse_amount(text: str) -> Decimal:
    """`500`, `500.5`, `500,5`, `1 000` and `1,000` as a Decimal; ValueError for anything
    else."""
    compact = text.strip()
    if _SPACE_GROUPS.fullmatch(compact):
        compact = re.sub(_GROUP_SPACE, "", compact)
    elif _COMMA_GROUPS.fullmatch(compact):
        compact = compact.replace(",", "")
    if not _AMOUNT.fullmatch(compact):
        raise ValueError("not an amount")
    try:
        value = Decimal(compact.replace(",", "."))
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if value >= MAX_AMOUNT:
        raise ValueError("amount too large")
    return value


def quoted(text: str, limit: int = ECHO_LIMIT) -> str:
    """Others' text (what users typed, their names) as an answer quotes it: at most `limit`
    characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def parse_count(text: str, most: int) -> int:
    """A whole number of days, hours or minutes from 1 to `most`; ValueError for anything else."""
    if not _COUNT.fullmatch(text) or not 1 <= int(text) <= most:
        raise ValueError("not a count")
    return int(text)


def format_amount(value: Decimal, locale: str) -> str:
    """At least two decimals, every digit SMSC gave, grouped as the language groups them."""
    # Looked up by its text: equal amounts need not be written alike (-0.00 and 0).
    return _format_amount(str(value), locale)


# Babel takes ≈ 15 µs an amount, and a /balance writes the same ones again and again: each
# chat watching a login shows its balance, unchanged until the next check, and its levels.
@lru_cache(maxsize=1024)
def _format_amount(value: str, locale: str) -> str:
    return _AMOUNT_PATTERN.apply(Decimal(value), _babel_locale(locale), decimal_quantization=False)


def format_money(value: Decimal, currency: str | None, locale: str) -> str:
    """The amount and currency as HTML (every caller's parse mode): the currency is SMSC's text."""
    amount = format_amount(value, locale)
    return f"{amount} {escape(currency)}" if currency else amount


def format_age(seconds: float, locale: str) -> str:
    """'5 minutes ago' / '5 минут назад'."""
    # To the second, which is finer than anything shown: the answers of a few seconds share
    # their texts (babel takes ≈ 20 µs one).
    return _format_age(max(round(seconds), 1), locale)


@lru_cache(maxsize=1024)
def _format_age(seconds: int, locale: str) -> str:
    return format_timedelta(
        timedelta(seconds=-seconds), add_direction=True, threshold=1.0, locale=_babel_locale(locale)
    )


def telegram_length(text: str) -> int:
    """Telegram counts UTF-16 code units of the text shown; this counts those of the HTML
    source, which is never shorter: a safe measure without parsing the markup."""
    return len(text.encode("utf-16-le")) // 2


def split_blocks(blocks: Iterable[str], separator: str = "\n\n") -> list[str]:
    """Blocks (say, one per account) gathered into as few texts as fit in a message, in
    order; a block too long for one message is cut between its lines. Markup never spans
    lines in this bot's texts, and no single line comes near the limit (names are short)."""
    texts: list[str] = []
    current = ""
    for block in blocks:
        for piece in _pieces(block):
            joined = f"{current}{separator}{piece}" if current else piece
            if current and telegram_length(joined) > TEXT_LIMIT:
                texts.append(current)
                joined = piece
            current = joined
    if current:
        texts.append(current)
    return texts


def _pieces(block: str) -> Iterator[str]:
    if telegram_length(block) <= TEXT_LIMIT:
        yield block
        return
    current = ""
    for line in block.split("\n"):
        joined = f"{current}\n{line}" if current else line
        if current and telegram_length(joined) > TEXT_LIMIT:
            yield current
            joined = line
        current = joined
    if current:
        yield current


def fit_lines(lines: list[str], more: Callable[[int], str], limit: int = CAPTION_LIMIT) -> str:
    """As many whole lines as fit in `limit` (a caption's, by default), then `more(n)`
    saying how many were left out."""
    text = "\n".join(lines)
    kept = len(lines)
    while telegram_length(text) > limit and kept > 0:
        kept -= 1
        text = "\n".join([*lines[:kept], more(len(lines) - kept)])
    return text


def needs_year(moment: datetime, now: datetime) -> bool:
    """Whether a date is written with its year (see YEARLESS_AHEAD)."""
    return moment - now > YEARLESS_AHEAD
