from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.telegram.formatting import format_age, format_amount, format_money, parse_amount


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500", "500"),
        ("500.5", "500.5"),
        ("500,5", "500.5"),
        ("1 000", "1000"),
        ("1\u00a0000,25", "1000.25"),
        ("1\u202f000", "1000"),
        ("1\u2009000", "1000"),
        ("12 345 678.50", "12345678.50"),
        ("1 000,5", "1000.5"),
        ("500 200", "500200"),  # README: "/threshold shop 500 200" is the one amount 500 200
        (" 42 ", "42"),
        ("0.000001", "0.000001"),
        ("10,000", "10000"),  # English thousands, not 10 (no sum has three decimals)
        ("25,000.00", "25000.00"),
        ("1,234,567.5", "1234567.5"),
        ("10,50", "10.50"),
        ("0,500", "0.500"),
    ],
)
def test_amounts_as_people_type_them(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-5",
        "abc",
        "1e3",
        "1,23,456",
        "10,000,5",
        "5.",
        "1.2.3",
        "NaN",
        "10000000000",
        "0.0000001",
        "1." + "0" * 4000,
        # A space groups thousands, nothing else: these were two or more words run together.
        "5 10",
        "2 5",
        "5 00",
        "1 2 3 4 5 6 7 8",
        "1 0000",
        "1  000",
        "0 500",
        "1 000 00",
        "1,000 000",
        "1 000.5 5",
    ],
)
def test_not_amounts(text):
    with pytest.raises(ValueError):
        parse_amount(text)


def test_each_language_writes_numbers_its_way():
    assert format_money(Decimal("1234.5"), "RUB", "en") == "1,234.50 RUB"
    assert format_money(Decimal("1234.5"), "RUB", "ru") == "1\u00a0234,50 RUB"
    assert format_amount(Decimal("0.125"), "en") == "0.125"


def test_a_currency_is_html_text():
    """Every message format_money goes into is HTML: SMSC's currency must not make it markup."""
    assert format_money(Decimal(1), "<b>&", "en") == "1.00 &lt;b&gt;&amp;"


def test_equal_amounts_written_as_they_came():
    assert [format_amount(Decimal(text), "en") for text in ("0", "-0.00", "0.0")] == [
        "0.00",
        "-0.00",
        "0.00",
    ]


def test_ages_in_each_language():
    assert format_age(0.2, "en") == "1 second ago"
    assert format_age(299.7, "en") == format_age(300, "en") == "5 minutes ago"
    assert format_age(7200, "ru") == "2 часа назад"


@given(
    st.lists(st.from_regex(r"[0-9]{1,5}", fullmatch=True), min_size=2, max_size=5).filter(
        lambda words: any(len(word) != 3 for word in words[1:])
    ),
    st.sampled_from([" ", "\u00a0", "\u202f", "\u2009"]),
)
def test_numbers_apart_are_no_amount(words, space):
    """Words of digits with a space between are one amount only as groups of three after the
    first: "/threshold shop 5 10" was set to 510."""
    with pytest.raises(ValueError):
        parse_amount(space.join(words))


@given(st.decimals(min_value=0, max_value=10**8, places=2))
def test_shown_amount_reads_back(value):
    for locale in ("en", "ru"):
        assert parse_amount(format_amount(value, locale)) == value
