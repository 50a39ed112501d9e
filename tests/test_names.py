"""Which of a chat's accounts a name given in a command means, and the names a new account may
take."""

import pytest

from bot.alerting.names import named, valid_name
from bot.storage.models import Account

DZE = "\u0455"  # Cyrillic, reads as a Latin "s"


def test_a_name_matches_in_any_letter_case_of_any_alphabet():
    accounts = [Account(name="Шоп"), Account(name="shop")]
    assert named(accounts, "шОП") is accounts[0]
    assert named(accounts, "SHOP") is accounts[1]
    assert named(accounts, "shop2") is None


def test_full_width_forms_are_the_plain_ones():
    accounts = [Account(name="shop"), Account(name="500")]
    assert named(accounts, "ＳＨＯＰ") is accounts[0]
    assert named(accounts, "５００") is accounts[1]


def test_stored_names_new_ones_may_not_take_are_still_found():
    accounts = [Account(name=f"{DZE}hop"), Account(name="５００")]
    assert named(accounts, f"{DZE}HOP") is accounts[0]
    assert named(accounts, "500") is accounts[1]
    assert named(accounts, "shop") is None  # another name, though it reads the same


@pytest.mark.parametrize(
    "name",
    [
        "shop",
        "Склад",
        "api.key",
        "user@mail.ru",
        "магазин_2",
        "店铺",
        "склад_KZ",
        "смс2sms",
        "a" * 32,
    ],
)
def test_names_a_new_account_may_take(name):
    assert valid_name(name)


@pytest.mark.parametrize(
    "name",
    [
        f"{DZE}hop",  # Cyrillic and Latin letters: reads as "shop"
        "sh\u03bfp",  # a Greek omicron
        "Скlад",
        "склад_Kаз",  # a word of Latin and Cyrillic letters beside a Cyrillic one
        "５００",  # full-width: "500" to the eye, another name to the database
        "ｓｈｏｐ",
        "shop²",
        "a" * 33,
        "bad<name>",
        "two words",
        "",
    ],
)
def test_names_a_new_account_may_not_take(name):
    assert not valid_name(name)
