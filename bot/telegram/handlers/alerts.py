"""The buttons under alerts: snooze reminders, check the balance now, or take the incident
("I'm on it"). Anyone may press."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, MaybeInaccessibleMessage, Message
from aiogram.utils.i18n import gettext as _
from babel.dates import format_datetime

from bot.alerting.accounts import AccountService
from bot.alerting.outbox import Outbox
from bot.alerting.pressed import Shown, shown
from bot.smsc.check_errors import check_error
from bot.smsc.errors import SmscError
from bot.storage.engine import Session
from bot.storage.models import Account, Chat
from bot.telegram import texts
from bot.telegram.alerts import SNOOZE_HOURS, AckAction, AlertAction, keyboard

router = Router(name=__name__)
# A press with no message (inline mode, which the bot sends no alert by) has no chat to find
# its account in: the fallback's answer (bot.telegram.handlers.fallback) is for it.
router.callback_query.filter(F.message)
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


async def alert_account(
    query: CallbackQuery, accounts: AccountService, session: Session, account_id: int
) -> tuple[Account, Shown | None] | None:
    """The chat's account an alert's button names, if it may be that account's; and what the
    alert shows when Telegram withholds its message (an InaccessibleMessage: an old one, its
    chat and id only), else None: its own text is at hand."""
    message: MaybeInaccessibleMessage = query.message  # never None: the router's filter
    if isinstance(message, Message):
        account = await button_account(query, accounts, account_id)
        return None if account is None else (account, None)
    account = await accounts.owned(message.chat.id, account_id)
    if account is None:
        return None
    # The button's data is the presser's word: only the outbox's records tell that this
    # message is an alert of that account's.
    alert = await shown(session, account, message.message_id)
    return None if alert is None else (account, alert)


async def edit_snoozed(
    bot: Bot, message: MaybeInaccessibleMessage, alert: Shown | None, note: str
) -> None:
    """The alert pressed, as it shows now, with the snooze's note below (an earlier one's
    replaced)."""
    if isinstance(message, Message):
        text, markup = message.html_text, message.reply_markup
    else:
        text, markup = alert.text, keyboard(alert.reply_markup)
    await bot.edit_message_text(
        text=text.split(SNOOZE_NOTE)[0] + note,
        chat_id=message.chat.id,
        message_id=message.message_id,
        reply_markup=markup,
    )


@router.callback_query(AlertAction.filter())
async def alert_action(
    query: CallbackQuery,
    callback_data: AlertAction,
    accounts: AccountService,
    session: Session,
    chat_record: Chat,
    bot: Bot,
) -> None:
    pressed = await alert_account(query, accounts, session, callback_data.account_id)
    if pressed is None or callback_data.snooze_hours not in (0, *SNOOZE_HOURS):
        await query.answer(texts.button_out_of_date())
        return
    account, alert = pressed
    message = query.message
    if callback_data.snooze_hours:
        until = await accounts.snooze(account, callback_data.snooze_hours)
        zone = ZoneInfo(chat_record.timezone)
        when = format_datetime(until, "d MMM HH:mm", tzinfo=zone, locale=texts.locale())
        note = SNOOZE_NOTE + _("Reminders snoozed by {user} until {when} ({zone}).").format(
            user=escape(query.from_user.full_name), when=when, zone=chat_record.timezone
        )
        await query.answer()
        await edit_snoozed(bot, message, alert, note)
        return
    await query.answer(_("Checking…"))
    try:
        result = await accounts.check(account)
    except SmscError as error:
        text = f"{texts.bold(account.name)}: {texts.check_error(check_error(error))}"
    else:
        text = texts.balance_text(account, result, chat_record.timezone)
    if isinstance(message, Message):
        await message.answer(text)  # beside the alert, in its topic
    else:  # withheld, its topic unknown: the account's
        await message.answer(text, message_thread_id=account.thread_id)


@router.callback_query(AckAction.filter())
async def acknowledge(
    query: CallbackQuery,
    callback_data: AckAction,
    accounts: AccountService,
    session: Session,
    outbox: Outbox | None,
) -> None:
    pressed = await alert_account(query, accounts, session, callback_data.account_id)
    if pressed is None:
        await query.answer(texts.button_out_of_date())
        return
    account, _alert = pressed
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
