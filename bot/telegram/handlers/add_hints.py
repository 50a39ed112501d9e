"""What a step of the /add dialog does not take is answered with what the step expects, in the
chat's language, and the dialog stays at its step: the fallback's "/help lists what I can do."
(in a group, silence) left the user guessing with a dialog still open. So is an edit: it is not
taken (the login edited after it was sent would not be the one the password goes with).

The router is the admin router's last: the steps' own handlers go first, and no command is
taken here (/cancel, /balance and the others mid-dialog are answered by their own routers; an
edited /add with a password by the fallback's).
"""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.telegram import texts
from bot.telegram.filters import DialogInput
from bot.telegram.handlers.add_dialog import AddAccount, expiry, prompt
from bot.telegram.handlers.add_rights import bot_command

router = Router(name=__name__)
router.message.filter(DialogInput())
router.edited_message.filter(DialogInput())
router.message.middleware(expiry)  # the steps' own: one rule of expiry for the dialog
router.edited_message.middleware(expiry)

# At the password step a text starting with "/" is a password unless it is one of the bot's
# commands (add_rights.bot_command); elsewhere it is left to the commands and the fallback.
COMMAND_LIKE = F.func(lambda message: (message.text or message.caption or "").startswith("/"))
BOT_COMMAND = F.func(lambda message: bot_command(message.text or message.caption or ""))
TEXT_STEPS = (AddAccount.name.state, AddAccount.secret.state, AddAccount.threshold.state)


def hint(raw_state: str | None, data: dict) -> str:
    if raw_state == AddAccount.name.state:
        if data["apikey"]:
            return _("Send the account's short name as text, or /cancel to stop.")
        return _("Send the SMSC login as text, or /cancel to stop.")
    if raw_state == AddAccount.secret.state:
        if data["apikey"]:
            text = _("Send the API key for {name} as a text message, or /cancel to stop.")
        else:
            text = _("Send the password for {name} as a text message, or /cancel to stop.")
        return text.format(name=texts.bold(data["name"]))
    if raw_state == AddAccount.threshold.state:
        # No /cancel offered: the account is saved already, and would stay without a warning.
        return _("Send the warning level as text: an amount like 500, or “off”.")
    return _("Press one of the buttons above, or /cancel to stop.")


async def answer(message: Message, raw_state: str | None, text: str) -> None:
    args = prompt(message, text)
    if raw_state not in TEXT_STEPS:
        args["reply_markup"] = None  # no reply field forced open: the answer is a button above
    await message.answer(**args)


@router.message(AddAccount.secret, ~BOT_COMMAND)
async def not_a_secret(message: Message, state: FSMContext, raw_state: str) -> None:
    text = hint(raw_state, await state.get_data())
    if message.caption:
        # Deleted already (add_rights.SecretFirst), but not tried as the password: a caption
        # is as likely a photo's description, and each wrong password tried spends one of the
        # few failures SMSC allows before it blocks the bot for every chat.
        text = _("I take no password or API key from a caption.") + " " + text
    await answer(message, raw_state, text)


@router.message(StateFilter(AddAccount), ~COMMAND_LIKE)
async def not_this_steps_answer(message: Message, state: FSMContext, raw_state: str) -> None:
    await answer(message, raw_state, hint(raw_state, await state.get_data()))


@router.edited_message(StateFilter(AddAccount), ~COMMAND_LIKE)
async def edited(message: Message, state: FSMContext, raw_state: str) -> None:
    text = _("I don't take edited messages, so your edit changed nothing.")
    await answer(message, raw_state, f"{text} {hint(raw_state, await state.get_data())}")
