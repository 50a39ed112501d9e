"""/threshold, /interval, /runway and /remove: changing what the chat watches."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.alerting.accounts import AccountService, LevelsOutOfOrder
from bot.alerting.names import named
from bot.config import MAX_INTERVAL_SECONDS
from bot.storage.models import Account
from bot.telegram import texts
from bot.telegram.filters import Command
from bot.telegram.formatting import format_amount, parse_amount, parse_count
from bot.telegram.handlers.alerts import button_account

router = Router(name=__name__)
OFF_WORDS = {"off", "выкл"}
# "/threshold <name> critical <amount|off>": the second, lower level.
CRITICAL_WORDS = {"critical", "crit", "критический", "критич", "крит"}


class RemoveChoice(CallbackData, prefix="remove"):
    account_id: int
    confirmed: bool


async def target(
    message: Message, accounts: AccountService, command: CommandObject, usage: str, *, value: bool
) -> tuple[Account, str] | None:
    """The account named first (or the chat's only account when the name is left out) and
    the rest of the arguments, which must be there when `value` is set; None after telling
    the user what is wrong."""
    found = await _target(accounts, message.chat.id, command, usage, value=value)
    if isinstance(found, str):
        await message.answer(found)
        return None
    return found


async def _target(
    accounts: AccountService, chat_id: int, command: CommandObject, usage: str, *, value: bool
) -> tuple[Account, str] | str:
    text = (command.args or "").strip()
    name, _space, rest = text.partition(" ")
    chosen = await accounts.list(chat_id)
    account = named(chosen, name)
    # A value where a name should be ("/threshold 500") means the chat's only account.
    looks_like_value = name[:1].isdigit() or name.lower() in OFF_WORDS | CRITICAL_WORDS
    if account is None and len(chosen) == 1 and (looks_like_value if value else not text):
        return chosen[0], text
    if account is None:
        return texts.unknown_account(name) if name and (rest or not value) else usage
    if bool(rest.strip()) != value:
        return usage
    return account, rest.strip()


@router.message(Command("threshold"))
async def threshold(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _(
        "Usage: /threshold &lt;name&gt; &lt;amount|off&gt;, e.g. /threshold mylogin 500; "
        "the critical level: /threshold &lt;name&gt; critical &lt;amount|off&gt;"
    )
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    word, _space, rest = value.partition(" ")
    if word.lower() in CRITICAL_WORDS:
        await critical_level(message, accounts, account, rest.strip(), usage)
        return
    if value.lower() in OFF_WORDS:
        await accounts.set_threshold(account, None)
        await message.answer(
            _("No low-balance alerts for {name} any more.").format(name=texts.bold(account.name))
        )
        return
    try:
        amount = parse_amount(value)
    except ValueError:
        await message.answer(usage)
        return
    try:
        await accounts.set_threshold(account, amount)
    except LevelsOutOfOrder:
        await message.answer(
            _(
                "The warning level can't be below the critical level of {name} ({critical}). "
                "Lower or turn off the critical level first: /threshold {login} critical "
                "&lt;amount|off&gt;"
            ).format(
                name=texts.bold(account.name),
                critical=format_amount(account.critical_threshold, texts.locale()),
                login=escape(account.name),
            )
        )
        return
    await message.answer(
        _("I will warn when {name} falls below {amount}.").format(
            name=texts.bold(account.name), amount=format_amount(amount, texts.locale())
        )
    )


async def critical_level(
    message: Message, accounts: AccountService, account: Account, value: str, usage: str
) -> None:
    """/threshold <name> critical <amount|off>: an amount typed as for the warning level."""
    name = texts.bold(account.name)
    if value.lower() in OFF_WORDS:
        await accounts.set_critical_threshold(account, None)
        await message.answer(_("No critical alerts for {name} any more.").format(name=name))
        return
    try:
        amount = parse_amount(value)
    except ValueError:
        await message.answer(usage)
        return
    try:
        await accounts.set_critical_threshold(account, amount)
    except LevelsOutOfOrder:
        await message.answer(
            _(
                "The critical level can't be above the warning level of {name} ({threshold}). "
                "Choose a smaller amount, or raise the warning level first."
            ).format(name=name, threshold=format_amount(account.threshold, texts.locale()))
        )
        return
    await message.answer(
        _("I will raise a critical alert when {name} falls below {amount}.").format(
            name=name, amount=format_amount(amount, texts.locale())
        )
    )


@router.message(Command("interval"))
async def interval(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _(
        "Usage: /interval &lt;name&gt; &lt;minutes&gt; (at least 1), e.g. /interval mylogin 15"
    )
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    try:
        minutes = parse_count(value, MAX_INTERVAL_SECONDS // 60)
    except ValueError:
        await message.answer(usage)
        return
    await accounts.set_interval(account, minutes * 60)
    await message.answer(
        _("{name} will be checked {interval}.").format(
            name=texts.bold(account.name), interval=texts.interval_label(minutes * 60)
        )
    )


@router.message(Command("remove"))
async def remove(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /remove &lt;name&gt;")
    found = await target(message, accounts, command, usage, value=False)
    if found is None:
        return
    account, _rest = found
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("Yes, remove"), callback_data=RemoveChoice(account_id=account.id, confirmed=True)
    )
    builder.button(
        text=_("No, keep it"), callback_data=RemoveChoice(account_id=account.id, confirmed=False)
    )
    await message.answer(
        _("Stop watching {name} and forget its credentials?").format(name=texts.bold(account.name)),
        reply_markup=builder.as_markup(),
    )


@router.callback_query(RemoveChoice.filter())
async def confirm_remove(
    query: CallbackQuery,
    callback_data: RemoveChoice,
    accounts: AccountService,
) -> None:
    account = await button_account(query, accounts, callback_data.account_id)
    if account is None:
        await query.answer(texts.button_out_of_date())
        return
    await query.answer()
    if not callback_data.confirmed:
        await query.message.edit_text(_("Kept {name}.").format(name=texts.bold(account.name)))
        return
    name = account.name
    await accounts.remove(account)
    await query.message.edit_text(_("Removed {name}.").format(name=texts.bold(name)))


@router.message(Command("runway"))
async def runway(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /runway &lt;name&gt; &lt;days|off&gt; — warn when the money lasts fewer days")
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    try:
        days = None if value.lower() in OFF_WORDS else parse_count(value, 365)
    except ValueError:
        await message.answer(usage)
        return
    await accounts.set_runway_threshold(account, days)
    if days is None:
        text = _("No runway alerts for {name} any more.").format(name=texts.bold(account.name))
    else:
        text = ngettext(
            "I will warn when {name} has money for less than {days} day.",
            "I will warn when {name} has money for fewer than {days} days.",
            days,
        ).format(name=texts.bold(account.name), days=days)
    await message.answer(text)
