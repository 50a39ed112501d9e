"""Which of a chat's accounts a name given in a command means."""

from bot.alerting.accounts import named
from bot.storage.models import Account


def test_a_name_matches_in_any_letter_case_of_any_alphabet():
    accounts = [Account(name="Шоп"), Account(name="shop")]
    assert named(accounts, "шОП") is accounts[0]
    assert named(accounts, "SHOP") is accounts[1]
    assert named(accounts, "shop2") is None
