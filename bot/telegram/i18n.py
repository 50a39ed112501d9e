"""Russian and English through aiogram's gettext i18n; each chat has its own language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"
# Workflow data: the chat's language as its update began (bot.telegram.middlewares), not read
# from its record again: when an update's error is handled, its transaction may have failed
# (the record expired with it) and its session closed. The apology speaks it all the same.
CHAT_LANGUAGE = "chat_language"


def create_i18n() -> I18n:
    # English is the source language: its messages are the msgids themselves.
    return I18n(path=LOCALES_DIR, default_locale="en", domain=DOMAIN)


class ChatLanguageMiddleware(I18nMiddleware):
    """Speaks the chat's language (set on first contact, changed by /lang)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        return data.get(CHAT_LANGUAGE) or self.i18n.default_locale
