"""The bot's commands: the menu Telegram shows, and /help, in each of the bot's languages."""

from __future__ import annotations

from html import escape

from aiogram import Bot
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __

from bot.storage.chats import LANGUAGES

# name: (arguments as /help shows them, description)
COMMANDS = {
    "balance": (__("[name]"), __("Current balance")),
    "accounts": ("", __("Registered accounts and settings")),
    "history": (__("[name] [days]"), __("Balance chart with forecast")),
    "add": ("", __("Register an SMSC account")),
    "threshold": (
        __("<name> [critical] <amount|off>"),
        __("Warn below an amount; critical: a second, lower level"),
    ),
    "interval": (__("<name> <minutes>"), __("How often to check")),
    "remove": (__("<name>"), __("Stop watching an account")),
    "mute": (__("<name> <hours|off>"), __("No alerts for an account for a while")),
    "rename": (__("<name> <new name>"), __("Rename an account")),
    "runway": (__("<name> <days|off>"), __("Warn when the money lasts fewer days")),
    "remind": (__("<hours|off>"), __("Reminders while a balance stays low")),
    "margin": (__("<percent>"), __("Margin above the threshold for recovery")),
    "anomaly": (__("<factor> <minimum>|off"), __("Alert on unusual spending")),
    "digest": ("<HH:MM|off>", __("Daily digest of all accounts")),
    "quiet": ("<HH:MM-HH:MM|off>", __("Quiet hours: alerts come silently")),
    "escalate": (__("<minutes> <@user …|admins>|off"), __("Escalate alerts nobody takes")),
    "tz": (__("<zone>"), __("Time zone, e.g. Europe/Moscow")),
    "lang": ("<ru|en>", __("Language: ru or en")),
    "help": ("", __("What I can do")),
    "cancel": ("", __("Leave a dialog")),
}


def help_lines() -> str:
    """One line a command, in the current locale."""
    lines = []
    for name, (args, description) in COMMANDS.items():
        usage = f"/{name} {escape(str(args))}" if args else f"/{name}"
        lines.append(f"{usage} — {description}")
    return "\n".join(lines)


async def set_commands(bot: Bot, i18n: I18n) -> None:
    for language in LANGUAGES:
        with i18n.context(), i18n.use_locale(language):
            commands = [
                BotCommand(command=name, description=str(description))
                for name, (_args, description) in COMMANDS.items()
            ]
        # English is also the menu for every language the bot does not speak.
        await bot.set_my_commands(commands, language_code=None if language == "en" else language)
