"""The buttons under alerts: snooze reminders, check the balance now, or take the incident
("I'm on it"). Anyone may press."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _
from babel.dates import format_datetime

from bot.alerting.accounts import AccountService
from bot.alerting.outbox import Outbox
from bot.smsc.check_errors import check_error
from bot.smsc.errors import SmscError
from bot.storage.models import Account, Chat
from bot.telegram import texts
from bot.telegram.alerts import SNOOZE_HOURS, AckAction, AlertAction

router = Router(name=__name__)
# A snooze's note begins a paragraph of its own: replaced by the next snooze, found by this
# whole beginning, not by the mark alone, which a name in the alert may hold too (cut there,
# an escalation's mention was left an open tag, and Telegram refused the edit).
SNOOZE_NOTE = "\n\n🔕 "


async def button_account(
    query: CallbackQuery, accounts: AccountService, account_id: int
) -> Account | None:
    """The chat's account a button names, if its message is still there."""
    if not isinstance(query.message, Message):
        return None
    return await accounts.owned(query.message.chat.id, account_id)


@router.callback_query(AlertAction.filter())
async def alert_action(
    query: CallbackQuery,
    callback_data: AlertAction,
    accounts: AccountService,
    chat_record: Chat,
) -> None:
    account = await button_account(query, accounts, callback_data.account_id)
    if account is None or callback_data.snooze_hours not in (0, *SNOOZE_HOURS):
        await query.answer(texts.button_out_of_date())
        return
    message = query.message
    if callback_data.snooze_hours:
        until = await accounts.snooze(account, callback_data.snooze_hours)
        zone = ZoneInfo(chat_record.timezone)
        when = format_datetime(until, "d MMM HH:mm", tzinfo=zone, locale=texts.locale())
        note = SNOOZE_NOTE + _("Reminders snoozed by {user} until {when} ({zone}).").format(
            user=escape(query.from_user.full_name), when=when, zone=chat_record.timezone
        )
        await query.answer()
        alert = message.html_text.split(SNOOZE_NOTE)[0]  # an earlier snooze's note
        await message.edit_text(alert + note, reply_markup=message.reply_markup)
        return
    await query.answer(_("Checking…"))
    try:
        result = await accounts.check(account)
    except SmscError as error:
        text = f"{texts.bold(account.name)}: {texts.check_error(check_error(error))}"
    else:
        text = texts.balance_text(account, result, chat_record.timezone)
    await message.answer(text)


@router.callback_query(AckAction.filter())
async def acknowledge(
    query: CallbackQuery,
    callback_data: AckAction,
    accounts: AccountService,
    outbox: Outbox | None,
) -> None:
    account = await button_account(query, accounts, callback_data.account_id)
    if account is None:
        await query.answer(texts.button_out_of_date())
        return
    user = query.from_user
    if await accounts.acknowledge(account, user.id, user.full_name, query.message.message_id):
        if outbox is not None:
            outbox.wake()  # the alert's edit
        await query.answer(_("It's yours: no more reminders for it."))
    elif account.acked_by_id == user.id:
        await query.answer(_("You are already on it."))
    elif account.acked_by is not None:
        await query.answer(_("{user} is already on it.").format(user=account.acked_by))
    else:
        await query.answer(_("This alert is over."))
