"""Accounts' names: which one a name typed in a command means, and which names a new one may
take."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from bot.storage.models import Account

# Labels for API-key accounts: what people type after /balance, /remove ...
NAME_PATTERN = re.compile(r"[\w.@+-]{1,32}")


def named(accounts: Iterable[Account], name: str) -> Account | None:
    """The account of this name among a chat's, in any letter case (of any alphabet)."""
    return next((account for account in accounts if same_name(account.name, name)), None)


def same_name(one: str, other: str) -> bool:
    """In any letter case, and compatibility forms (full-width letters and digits, as East Asian
    keyboards type them) as the plain ones: they read the same."""
    return _folded(one) == _folded(other)


def _folded(name: str) -> str:
    # NFKC again after casefold, which can leave a string not in NFKC (Unicode's NFKC_Casefold).
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def valid_name(name: str) -> bool:
    """A name a chat may give an account (/add, /rename): in its plain form (NFKC: no
    full-width or superscript forms, which read as another name) and no word of it in two
    alphabets. Stored names need not pass: older rules let in what this refuses, and those
    accounts are still found by their names."""
    return (
        NAME_PATTERN.fullmatch(name) is not None
        and unicodedata.normalize("NFKC", name) == name
        and all(len(_scripts(word)) == 1 for word in _WORDS.findall(name))
    )


# A name's words: its runs of letters, between digits, "_", "." and the like.
_WORDS = re.compile(r"[^\W\d_]+")


def _scripts(word: str) -> set[str]:
    """The alphabets of a word's letters, as Unicode names them ("LATIN", "CYRILLIC"...).

    A word of a new name is of one alphabet: Cyrillic dze, o, er and es and Greek omicron look
    like Latin s, o, p, c and o, and "shop" with a Cyrillic dze for its "s" was a second account
    reading "shop" in /accounts. Words apart may differ ("склад_KZ"). A confusables table would
    catch more (an all-Cyrillic word beside its Latin lookalike), but a lookalike is mostly one
    letter typed in the wrong keyboard layout, which this refuses with no table to keep up (a
    Japanese word of kana and kanji is refused too: the price of so simple a rule)."""
    return {unicodedata.name(c, "").partition(" ")[0] for c in word}
