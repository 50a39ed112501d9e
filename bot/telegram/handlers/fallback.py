"""What nothing else answered: admin commands from members, unknown commands, stray buttons,
passwords edited into an /add. (A member's /add with a password is answered before:
bot.telegram.handlers.add_rights.)"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

from bot.telegram.handlers.add_common import carries_secret, delete_secret

router = Router(name=__name__)
# An /add with a password (in a photo's caption too).
WITH_SECRET = F.func(lambda message: carries_secret(message.text or message.caption))

ADMIN_COMMANDS = (
    *("add", "threshold", "interval", "remove", "lang", "remind", "margin"),
    *("runway", "anomaly", "digest", "tz"),
    *("mute", "rename", "quiet", "escalate"),
)


@router.edited_message(Command("add", ignore_case=True), WITH_SECRET)
async def secret_in_an_edit(message: Message) -> None:
    """An /add edited to carry a password, by anyone anywhere: an edit is not taken as a
    command, and the password must not stay in sight."""
    await delete_secret(message)
    await message.answer(
        _(
            "I deleted your edited /add: it held a password, and I take no command from an "
            "edit. Send /add again as a new message. In a group others may have seen the "
            "password: change it in SMSC."
        )
    )


@router.message(Command(*ADMIN_COMMANDS))
async def not_an_admin(message: Message) -> None:
    await message.reply(_("Sorry, only administrators of this chat may do that."))


@router.callback_query()
async def stray_button(query: CallbackQuery) -> None:
    await query.answer(_("This button is not for you, or it has expired."))


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message, bot: Bot) -> None:
    command = message.text.split(maxsplit=1)[0]
    _name, _at, mention = command.partition("@")
    me = await bot.me()
    # In groups, commands meant for other bots are none of our business.
    if message.chat.type == ChatType.PRIVATE or mention.lower() == (me.username or "").lower():
        await message.answer(_("I don't know that command. /help lists what I can do."))


@router.message(F.chat.type == ChatType.PRIVATE)
async def chatter(message: Message) -> None:
    await message.answer(_("/help lists what I can do."))
