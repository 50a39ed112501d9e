"""/start, /help and /cancel."""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart
from aiogram.fsm.context import FSMContext
from aiogram.types import Message, ReplyKeyboardRemove
from aiogram.utils.i18n import gettext as _

from bot.telegram import texts
from bot.telegram.commands import help_lines
from bot.telegram.handlers.add_dialog import AddAccount

router = Router(name=__name__)


def help_text(in_group: bool) -> str:
    text = "\n\n".join(
        [
            _("I watch SMS Center (smsc.ru) balances and warn this chat before SMS traffic stops."),
            help_lines(),
        ]
    )
    if in_group:
        text += "\n\n" + _(
            "In a group everyone may read balances; only administrators may add, change or "
            "remove accounts. Passwords are best given in a private chat: /add offers a button."
        )
    return text


@router.message(CommandStart(deep_link=True))
async def start_with_unknown_link(message: Message) -> None:
    """A /start payload no handler took: an old, mistyped or made-up link."""
    text = _("I don't know that link, so it did nothing. Here is what I can do.")
    await message.answer(text + "\n\n" + help_text(message.chat.type != ChatType.PRIVATE))


@router.message(CommandStart())
@router.message(Command("help"))
async def start(message: Message) -> None:
    await message.answer(help_text(message.chat.type != ChatType.PRIVATE))


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext) -> None:
    step = await state.get_state()
    if step is None:
        await message.answer(_("Nothing to cancel."), reply_markup=ReplyKeyboardRemove())
        return
    dialog = await state.get_data()
    await state.clear()
    text = _("Cancelled.")
    if step == AddAccount.threshold.state:  # the account was saved before this question
        text += " " + texts.kept_account(dialog)
    await message.answer(text, reply_markup=ReplyKeyboardRemove())
