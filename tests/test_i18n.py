"""Every text the bot can say exists in Russian too, with the same placeholders, and in each
of Russian's three plural forms where it has a number."""

import gettext
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.telegram.i18n import DOMAIN, LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent
PO = LOCALES_DIR / "ru" / "LC_MESSAGES" / f"{DOMAIN}.po"
PLACEHOLDER = re.compile(r"\{\w+\}")
# A number Russian writes in each plural form: 1 день, 2 дня, 5 дней.
RUSSIAN_FORMS = (1, 2, 5)


def source_messages() -> set[str | tuple[str, str]]:
    """Texts as msgids: a (singular, plural) pair for those written through ngettext."""
    found = extract_from_dir(
        ROOT / "bot",
        method_map=[("**.py", "python")],
        keywords={"_": None, "__": None, "ngettext": (1, 2)},
    )
    return {message for _file, _line, message, _comments, _context in found}


def translations() -> dict[str | tuple[str, str], str | tuple[str, ...]]:
    with PO.open("rb") as file:
        return {m.id: m.string for m in read_po(file) if m.id}


def forms(text: str | tuple[str, ...]) -> tuple[str, ...]:
    return text if isinstance(text, tuple) else (text,)


def test_every_message_is_translated_with_same_placeholders():
    catalog = translations()
    missing = source_messages() - {i for i, s in catalog.items() if all(forms(s))}
    assert not missing, f"untranslated: {sorted(missing, key=str)}"
    for msgid, msgstr in catalog.items():
        wanted = sorted(PLACEHOLDER.findall(forms(msgid)[0]))
        for text in forms(msgid) + forms(msgstr):
            assert sorted(PLACEHOLDER.findall(text)) == wanted, msgid
        if isinstance(msgid, tuple):
            assert len(msgstr) == len(RUSSIAN_FORMS), msgid


def test_compiled_catalogue_matches_source():
    compiled = gettext.translation(DOMAIN, LOCALES_DIR, languages=["ru"])
    for msgid, msgstr in translations().items():
        if isinstance(msgid, tuple):
            # The forms come in the order the header's Plural-Forms picks them.
            assert [compiled.ngettext(*msgid, n) for n in RUSSIAN_FORMS] == list(msgstr), msgid
        else:
            assert compiled.gettext(msgid) == msgstr, msgid


def test_russian_numbers_take_their_plural_form():
    compiled = gettext.translation(DOMAIN, LOCALES_DIR, languages=["ru"])
    day = "enough for ~{days} day (until {date})", "enough for ~{days} days (until {date})"
    said = [compiled.ngettext(*day, n).format(days=n, date="6 дек.") for n in (1, 2, 5, 11, 21, 22)]
    assert said == [
        "примерно на 1 день (до 6 дек.)",
        "примерно на 2 дня (до 6 дек.)",
        "примерно на 5 дней (до 6 дек.)",
        "примерно на 11 дней (до 6 дек.)",
        "примерно на 21 день (до 6 дек.)",
        "примерно на 22 дня (до 6 дек.)",
    ]
