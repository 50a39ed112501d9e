"""Unit tests of the SMSC sites (bot/smsc/sites.py) and of the client's credentials."""

from __future__ import annotations

import pytest

from bot.smsc.client import Credentials
from bot.smsc.sites import SITES, site_url, topup_url
from tests.smsc_fixtures import CREDS, KEY_CREDS, PASSWORD, assert_no_secret

# ----- sites ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SITES))
def test_known_site_names(name: str) -> None:
    assert site_url(name) == f"https://{name}"
    assert site_url(f" {name.upper()} ") == f"https://{name}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://smsc.ru", "https://smsc.ru"),
        ("https://SMSC.ru/", "https://smsc.ru"),
        ("HTTP://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://proxy.local/smsc/", "http://proxy.local/smsc"),
    ],
)
def test_site_urls_are_normalised(given: str, expected: str) -> None:
    assert site_url(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "smsc-ru",
        "example.com",
        "ftp://smsc.ru",
        "https://",
        "https://smsc.ru/?login=a",
        "https://smsc.ru:notaport",
        f"https://alice:{PASSWORD}@smsc.ru",
    ],
)
def test_bad_sites_are_refused_without_echo(given: str) -> None:
    with pytest.raises(ValueError, match="SMSC site must be") as caught:
        site_url(given)
    if given:
        assert given not in str(caught.value)
    assert_no_secret(caught.value)


def test_topup_url() -> None:
    assert topup_url("https://smsc.kz") == "https://smsc.kz/payment/"
    assert topup_url("smscentre.com") == "https://smscentre.com/payment/"


# ----- credentials ---------------------------------------------------------------------


def test_credentials_hide_the_secret() -> None:
    for creds in (CREDS, KEY_CREDS):
        assert creds.secret not in repr(creds)
        assert creds.secret not in str(creds)
        assert creds.secret not in creds.fingerprint
        assert creds.secret not in creds.rate_key
    assert "alice" in repr(CREDS)


def test_credentials_keys() -> None:
    assert CREDS.rate_key == "https://smsc.ru|alice"
    assert KEY_CREDS.rate_key.startswith("https://smsc.kz|key:")
    assert len(KEY_CREDS.rate_key.removeprefix("https://smsc.kz|key:")) == 16

    other_password = Credentials("https://smsc.ru", "alice", "other")
    assert other_password.rate_key == CREDS.rate_key
    assert other_password.fingerprint != CREDS.fingerprint
    assert Credentials("smsc.ru/", "alice", PASSWORD).fingerprint == CREDS.fingerprint
    assert Credentials("smsc.kz", "alice", PASSWORD).fingerprint != CREDS.fingerprint
    # The parts are kept apart: moving text between login and secret changes the fingerprint.
    assert (
        Credentials("smsc.ru", "ab", "c").fingerprint
        != Credentials("smsc.ru", "a", "bc").fingerprint
    )


def test_credentials_site_is_normalised_and_checked() -> None:
    assert Credentials("SMSC.UA", "bob", "pw").site == "https://smsc.ua"
    with pytest.raises(ValueError):
        Credentials("nowhere", "bob", "pw")
    with pytest.raises(ValueError) as caught:
        Credentials("smsc.ru", "", PASSWORD)
    assert_no_secret(caught.value)
    with pytest.raises(ValueError):
        Credentials("smsc.ru", "bob", "")
