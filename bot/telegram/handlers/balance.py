"""/balance and /accounts: what everyone in the chat may read."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.alerting.accounts import AccountService
from bot.alerting.names import named
from bot.smsc.check_errors import check_error
from bot.smsc.errors import SmscError
from bot.storage.models import Chat
from bot.telegram import texts
from bot.telegram.filters import Command
from bot.telegram.formatting import split_blocks

router = Router(name=__name__)


def no_accounts() -> str:
    return _("No SMSC accounts are registered in this chat yet. Add one with /add.")


@router.message(Command("balance"))
async def balance(
    message: Message, command: CommandObject, accounts: AccountService, chat_record: Chat
) -> None:
    chosen = await accounts.list(message.chat.id)
    if command.args:
        name = command.args.strip()
        account = named(chosen, name)
        if account is None:
            await message.answer(texts.unknown_account(name))
            return
        chosen = [account]
    if not chosen:
        await message.answer(no_accounts())
        return
    lines = []
    for account, result in await accounts.balances(chosen):
        if isinstance(result, SmscError):
            error = texts.check_error(check_error(result))
            lines.append(f"{texts.bold(account.name)}: {error}")
        else:
            lines.append(texts.balance_text(account, result, chat_record.timezone))
    for text in split_blocks(lines, separator="\n"):
        await message.answer(text)


@router.message(Command("accounts"))
async def list_accounts(message: Message, accounts: AccountService, chat_record: Chat) -> None:
    chosen = await accounts.list(message.chat.id)
    if not chosen:
        await message.answer(no_accounts())
        return
    blocks = []
    for account in chosen:
        muted = texts.muted_text(account, chat_record.timezone)
        blocks.append(texts.account_text(account) + (f"\n{muted}" if muted else ""))
    for text in split_blocks(blocks):
        await message.answer(text)
