"""Russian and English through aiogram's gettext i18n; each chat has its own language."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.storage.models import Chat

LOCALES_DIR = Path(__file__).parent / "locales"
DOMAIN = "messages"


def create_i18n() -> I18n:
    # English is the source language: its messages are the msgids themselves.
    return I18n(path=LOCALES_DIR, default_locale="en", domain=DOMAIN)


class ChatLanguageMiddleware(I18nMiddleware):
    """Speaks the chat's language (set on first contact, changed by /lang)."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        chat: Chat | None = data.get("chat_record")
        return chat.language if chat is not None else self.i18n.default_locale
