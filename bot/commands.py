"""The command menu Telegram shows, in each of the bot's languages."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __

from bot.chats import LANGUAGES

COMMANDS = {
    "balance": __("Current balance"),
    "accounts": __("Registered accounts and settings"),
    "add": __("Register an SMSC account"),
    "threshold": __("Warn below an amount"),
    "interval": __("How often to check"),
    "remove": __("Stop watching an account"),
    "lang": __("Language: ru or en"),
    "help": __("What I can do"),
    "cancel": __("Leave a dialog"),
}


async def set_commands(bot: Bot, i18n: I18n) -> None:
    for language in LANGUAGES:
        with i18n.context(), i18n.use_locale(language):
            commands = [
                BotCommand(command=name, description=str(text)) for name, text in COMMANDS.items()
            ]
        # English is also the menu for every language the bot does not speak.
        await bot.set_my_commands(commands, language_code=None if language == "en" else language)
