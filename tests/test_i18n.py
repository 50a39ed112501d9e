"""Every text the bot can say exists in Russian too, with the same placeholders."""

import gettext
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.telegram.i18n import DOMAIN, LOCALES_DIR

ROOT = Path(__file__).resolve().parent.parent
PO = LOCALES_DIR / "ru" / "LC_MESSAGES" / f"{DOMAIN}.po"
PLACEHOLDER = re.compile(r"\{\w+\}")


def source_messages() -> set[str]:
    found = extract_from_dir(
        ROOT / "bot", method_map=[("**.py", "python")], keywords={"_": None, "__": None}
    )
    return {message for _file, _line, message, _comments, _context in found}


def translations() -> dict[str, str]:
    with PO.open("rb") as file:
        return {m.id: m.string for m in read_po(file) if m.id}


def test_every_message_is_translated_with_same_placeholders():
    catalog = translations()
    missing = source_messages() - {i for i, s in catalog.items() if s}
    assert not missing, f"untranslated: {sorted(missing)}"
    for msgid, msgstr in catalog.items():
        assert sorted(PLACEHOLDER.findall(msgid)) == sorted(PLACEHOLDER.findall(msgstr)), msgid


def test_compiled_catalogue_matches_source():
    compiled = gettext.translation(DOMAIN, LOCALES_DIR, languages=["ru"])
    for msgid, msgstr in translations().items():
        assert compiled.gettext(msgid) == msgstr, msgid
