"""/mute and /rename (one account) and /quiet (the whole chat): who is woken, and when."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from bot.alerting.accounts import AccountExists, AccountService
from bot.alerting.chats import ChatService
from bot.storage.models import Chat
from bot.telegram import texts
from bot.telegram.filters import Command
from bot.telegram.formatting import parse_count
from bot.telegram.handlers.manage import OFF_WORDS, target

router = Router(name=__name__)
MAX_MUTE_HOURS = 30 * 24


@router.message(Command("mute"))
async def mute(
    message: Message, command: CommandObject, accounts: AccountService, chat_record: Chat
) -> None:
    usage = _(
        "Usage: /mute &lt;name&gt; &lt;hours|off&gt; (up to {most} hours), e.g. /mute mylogin 4"
    ).format(most=MAX_MUTE_HOURS)
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, value = found
    name = texts.bold(account.name)
    if value.lower() in OFF_WORDS:
        if account.muted_until is None:
            await message.answer(_("{name} is not muted.").format(name=name))
            return
        await accounts.mute(account, None)
        await message.answer(_("🔔 Alerts for {name} are back on.").format(name=name))
        return
    try:
        hours = parse_count(value, MAX_MUTE_HOURS)
    except ValueError:
        await message.answer(usage)
        return
    until = await accounts.mute(account, hours)
    await message.answer(
        "🔕 "
        + _(
            "No alerts for {name} until {time}. Checks go on; /balance and /history work. "
            "/mute {login} off ends it sooner."
        ).format(
            name=name,
            time=texts.local_time(until, chat_record.timezone),
            login=escape(account.name),
        )
    )


@router.message(Command("rename"))
async def rename(message: Message, command: CommandObject, accounts: AccountService) -> None:
    usage = _("Usage: /rename &lt;name&gt; &lt;new name&gt;, e.g. /rename mylogin shop")
    found = await target(message, accounts, command, usage, value=True)
    if found is None:
        return
    account, new_name = found
    old_name = account.name
    try:
        await accounts.rename(account, new_name)
    except ValueError:
        await message.answer(
            _(
                "{name} can't be a name: up to 32 letters, digits and . _ - @ + please, "
                "each word in one alphabet."
            ).format(name=texts.bold(new_name[:64]))
        )
        return
    except AccountExists:
        await message.answer(
            _("This chat already has an account named {name}. Choose another name.").format(
                name=texts.bold(new_name)
            )
        )
        return
    await message.answer(
        _("Renamed {old} to {new}.").format(old=texts.bold(old_name), new=texts.bold(new_name))
    )


@router.message(Command("quiet"))
async def quiet_hours(
    message: Message, command: CommandObject, chat_record: Chat, chats: ChatService
) -> None:
    value = (command.args or "").strip()
    usage = _(
        "Usage: /quiet &lt;HH:MM-HH:MM|off&gt;, e.g. /quiet 22:00-07:00 — alerts come "
        "silently then, except critical ones and escalations"
    )
    if not value:
        await message.answer(f"{quiet_hours_text(chat_record)}\n{usage}")
        return
    try:
        await chats.set_quiet_hours(chat_record, None if value.lower() in OFF_WORDS else value)
    except ValueError:
        await message.answer(usage)
        return
    await message.answer(quiet_hours_text(chat_record))


def quiet_hours_text(chat: Chat) -> str:
    if chat.quiet_hours is None:
        return _("No quiet hours: every alert rings.")
    start, end = chat.quiet_hours.split("-")
    return _(
        "Quiet hours {start}–{end} ({zone}): alerts come silently then, except critical ones "
        "and escalations. Nothing is held back."
    ).format(start=start, end=end, zone=chat.timezone)
