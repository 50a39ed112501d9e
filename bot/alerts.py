"""The words and buttons of alerts, in the current i18n locale (HTML parse mode)."""

from __future__ import annotations

from html import escape

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.formatting import format_amount, format_money
from bot.models import Account
from bot.smsc import topup_url

SNOOZE_HOURS = (1, 24)


class AlertAction(CallbackData, prefix="alert"):
    account_id: int
    snooze_hours: int = 0  # 0: check now


def buttons(account: Account) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for hours in SNOOZE_HOURS:
        builder.button(
            text=_("Snooze {hours} h").format(hours=hours),
            callback_data=AlertAction(account_id=account.id, snooze_hours=hours),
        )
    builder.button(text=_("Check now"), callback_data=AlertAction(account_id=account.id))
    return builder.as_markup()


def _balance(account: Account) -> str:
    lang = texts.locale()
    text = format_money(account.last_balance, account.currency, lang)
    if account.last_credit:
        text += " " + _("(credit {credit})").format(credit=format_amount(account.last_credit, lang))
    return text


def _top_up(account: Account) -> str:
    url = topup_url(account.site)
    return _("Top up: {link}").format(link=f'<a href="{escape(url)}">{escape(url)}</a>')


def render(kind: str, account: Account) -> str:
    lang = texts.locale()
    name = texts.bold(account.name)
    if kind == "low":
        return "\n".join(
            [
                _("⚠️ Low balance on {name}: {balance}, below the threshold of {threshold}.").format(
                    name=name,
                    balance=_balance(account),
                    threshold=format_amount(account.threshold, lang),
                ),
                _top_up(account),
            ]
        )
    if kind == "reminder":
        return "\n".join(
            [
                _("⏰ {name} is still low: {balance} (threshold {threshold}).").format(
                    name=name,
                    balance=_balance(account),
                    threshold=format_amount(account.threshold, lang),
                ),
                _top_up(account),
            ]
        )
    if kind == "recovered":
        topped_up = account.last_balance - (account.lowest_balance or account.last_balance)
        text = _("✅ {name} is back to {balance}.").format(name=name, balance=_balance(account))
        if topped_up > 0:
            text += " " + _("Topped up by {amount}.").format(
                amount=format_money(topped_up, account.currency, lang)
            )
        return text
    if kind == "cant_check":
        return _("❌ Can't check {name}. {reason}").format(
            name=name, reason=texts.check_error(account.last_error)
        )
    if kind == "working":
        return _("✅ Checks of {name} work again. Balance: {balance}.").format(
            name=name, balance=_balance(account)
        )
    raise ValueError(f"unknown alert kind {kind!r}")
