"""What a step of the /add dialog does not take is answered with what the step expects, in the
chat's language, and the dialog stays at its step: the fallback's "/help lists what I can do."
(in a group, silence) left the user guessing with a dialog still open.

The router is the admin router's last: the steps' own handlers go first, and no command is
taken here (/cancel, /balance and the others mid-dialog are answered by their own routers).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.telegram import texts
from bot.telegram.filters import DialogInput
from bot.telegram.handlers.add_dialog import AddAccount, prompt
from bot.telegram.handlers.add_rights import bot_command
from bot.telegram.middlewares import DialogExpiry

router = Router(name=__name__)
router.message.filter(DialogInput())
expiry = DialogExpiry()
router.message.middleware(expiry)


def secret_hint(data: dict) -> str:
    if data["apikey"]:
        text = _("Send the API key for {name} as a text message, or /cancel to stop.")
    else:
        text = _("Send the password for {name} as a text message, or /cancel to stop.")
    return text.format(name=texts.bold(data["name"]))


@router.message(
    AddAccount.secret, ~F.func(lambda message: bot_command(message.text or message.caption or ""))
)
async def not_a_secret(message: Message, state: FSMContext) -> None:
    text = secret_hint(await state.get_data())
    if message.caption:
        # Deleted already (add_rights.SecretFirst), but not tried as the password: a caption
        # is as likely a photo's description, and each wrong password tried spends one of the
        # few failures SMSC allows before it blocks the bot for every chat.
        text = _("I take no password or API key from a caption.") + " " + text
    await message.answer(**prompt(message, text))
