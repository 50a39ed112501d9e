"""The words and buttons of alerts and digests (HTML parse mode): the renderer the alerting
layer is handed (bot.alerting.events.Renderer), in the chat's language."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import I18n, ngettext
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.dates import format_datetime

from bot.alerting.events import AlertEvent, DigestContent, DigestEntry, Rendered
from bot.smsc.sites import topup_url
from bot.storage.models import Account, AccountState
from bot.telegram import texts
from bot.telegram.formatting import format_amount, format_money, split_blocks

SNOOZE_HOURS = (1, 24)


class AlertAction(CallbackData, prefix="alert"):
    account_id: int
    snooze_hours: int = 0  # 0: check now


class AckAction(CallbackData, prefix="ack"):
    """ "I'm on it": the presser takes the account's open incident."""

    account_id: int


class TelegramRenderer:
    """bot.alerting.events.Renderer in Telegram's words and inline keyboards."""

    def __init__(self, i18n: I18n) -> None:
        self._i18n = i18n

    def alert(self, event: AlertEvent, *, buttons: bool = False) -> Rendered:
        with self._i18n.context(), self._i18n.use_locale(event.language):
            text = render(event)
            markup = alert_buttons(event.account) if buttons else None
        return Rendered(text, markup.model_dump_json(exclude_none=True) if markup else None)

    def digest(self, content: DigestContent) -> list[str]:
        with self._i18n.context(), self._i18n.use_locale(content.language):
            lines = [_("📋 Daily digest")]
            lines += [_digest_line(entry, content.now, content.tz) for entry in content.entries]
        return split_blocks(lines)


def _digest_line(entry: DigestEntry, now: datetime, tz: str) -> str:
    account, lang = entry.account, texts.locale()
    state = texts.account_state(account)
    if account.last_balance is None:
        return f"{texts.bold(account.name)}: {state}"
    spent = (
        _("not known, not checked in 24 h")
        if entry.spent is None
        else format_money(entry.spent, account.currency, lang)
    )
    return "\n".join(
        [
            f"{texts.bold(account.name)}: "
            + format_money(account.last_balance, account.currency, lang)
            + f" · {state}",
            _("Spent in 24 h: {amount}").format(amount=spent),
            _("Runway: {runway}.").format(runway=texts.runway_text(account, now, tz)),
        ]
    )


def alert_buttons(account: Account) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for hours in SNOOZE_HOURS:
        builder.button(
            text=_("Snooze {hours} h").format(hours=hours),
            callback_data=AlertAction(account_id=account.id, snooze_hours=hours),
        )
    builder.button(text=_("Check now"), callback_data=AlertAction(account_id=account.id))
    builder.button(text="🙋 " + _("I'm on it"), callback_data=AckAction(account_id=account.id))
    builder.adjust(len(SNOOZE_HOURS) + 1, 1)
    return builder.as_markup()


def keyboard(reply_markup: str | None) -> InlineKeyboardMarkup | None:
    """An outbox's keyboard (JSON, as `TelegramRenderer.alert` wrote it) for an edit."""
    return InlineKeyboardMarkup.model_validate_json(reply_markup) if reply_markup else None


def acked_note(account: Account, tz: str) -> str:
    return "👤 " + _("Acknowledged by {user} at {time}.").format(
        user=escape(account.acked_by or ""), time=_time(account.acked_at, tz)
    )


def _balance(account: Account) -> str:
    lang = texts.locale()
    text = format_money(account.last_balance, account.currency, lang)
    if account.last_credit:
        text += " " + _("(credit {credit})").format(credit=format_amount(account.last_credit, lang))
    return text


def _top_up(account: Account) -> str:
    url = topup_url(account.site)
    return _("Top up: {link}").format(link=f'<a href="{escape(url)}">{escape(url)}</a>')


def render(event: AlertEvent) -> str:
    """The alert's text in the current locale (see AlertEvent for what its fields mean)."""
    kind, account, now, tz = event.kind, event.account, event.now, event.tz
    amount, since, lang = event.amount, event.since, texts.locale()
    if kind == "acked":
        return acked_note(account, tz)
    if kind == "resolved":
        resolved = "✅ " + _("Resolved at {time}.").format(time=_time(now, tz))
        return f"{acked_note(account, tz)}\n{resolved}" if account.acked_at else resolved
    if kind == "low_over" and since is not None:
        return _("⚠️ {name} was low from {start} to {end}.").format(
            name=texts.bold(account.name), start=_time(since, tz), end=_time(now, tz)
        )
    if kind == "critical_over" and since is not None:
        return _(
            "🚨 {name} was low from {start} to {end}, for a time under the critical level."
        ).format(name=texts.bold(account.name), start=_time(since, tz), end=_time(now, tz))
    name = texts.bold(account.name)
    if kind == "cant_check":
        return _("❌ Can't check {name}. {reason}").format(
            name=name, reason=texts.check_error(account.last_error)
        )
    if kind == "unmuted":
        state = texts.account_state(account)
        if account.state == AccountState.CANT_CHECK and account.last_error:
            state += " — " + texts.check_error(account.last_error)
        if account.state == AccountState.LOW:
            return _("🔔 Alerts for {name} are back on. State: {state}, balance {balance}.").format(
                name=name, state=state, balance=_balance(account)
            )
        return _("🔔 Alerts for {name} are back on. State: {state}.").format(name=name, state=state)
    runway = _("Runway: {runway}.").format(runway=texts.runway_text(account, now, tz))
    threshold = format_amount(account.threshold, lang) if account.threshold is not None else ""
    below_amount = account.threshold is not None and account.last_balance < account.threshold
    if kind == "low" and below_amount:
        head = _("⚠️ Low balance on {name}: {balance}, below the threshold of {threshold}.")
        return "\n".join(
            [
                head.format(name=name, balance=_balance(account), threshold=threshold),
                runway,
                _top_up(account),
            ]
        )
    if kind == "low" and account.runway_threshold is None:
        # Low, yet not under its threshold: within the recovery margin, and alerted again to a
        # chat that let the bot back in (bot.alerting.reachable). It is still low, so it says.
        kind = "reminder"
    elif kind == "low":
        days = account.runway_threshold
        head = ngettext(
            "⚠️ {name} will run out soon: {balance}, runway under {days} day.",
            "⚠️ {name} will run out soon: {balance}, runway under {days} days.",
            days,
        )
        return "\n".join(
            [
                head.format(name=name, balance=_balance(account), days=days),
                runway,
                _top_up(account),
            ]
        )
    if kind == "critical":
        head = _(
            "🚨 Critical balance on {name}: {balance}, below the critical level of {critical}."
        )
        critical = format_amount(account.critical_threshold, lang)
        return "\n".join(
            [
                head.format(name=name, balance=_balance(account), critical=critical),
                runway,
                _top_up(account),
            ]
        )
    if kind == "critical_cleared":
        head = _(
            "↗️ {name} is no longer critical: {balance}, above the critical level of {critical}. "
            "It stays a warning until the balance recovers."
        )
        critical = format_amount(account.critical_threshold, lang)
        return head.format(name=name, balance=_balance(account), critical=critical)
    if kind == "reminder" and account.critical_since is not None:
        head = _("⏰ {name} is still critical: {balance}.")
        return "\n".join(
            [head.format(name=name, balance=_balance(account)), runway, _top_up(account)]
        )
    if kind == "reminder":
        head = _("⏰ {name} is still low: {balance}.")
        return "\n".join(
            [head.format(name=name, balance=_balance(account)), runway, _top_up(account)]
        )
    if kind == "recovered":
        # Not `lowest_balance or …`: a balance that fell to exactly 0 is a lowest like any other.
        lowest = account.lowest_balance
        topped_up = account.last_balance - (lowest if lowest is not None else account.last_balance)
        text = _("✅ {name} is back to {balance}.").format(name=name, balance=_balance(account))
        if topped_up > 0:
            text += " " + _("Topped up by {amount}.").format(
                amount=format_money(topped_up, account.currency, lang)
            )
        return f"{text}\n{runway}"
    if kind == "topup":
        head = _("💰 {name} topped up: +{amount}, now {balance}.")
        amount_text = format_money(amount, account.currency, lang)
        return "\n".join(
            [head.format(name=name, amount=amount_text, balance=_balance(account)), runway]
        )
    if kind == "anomaly":
        head = _(
            "📈 Unusual spending on {name}: {amount} in the last 24 hours, far above the daily "
            "average of the week before. A runaway sender or SMS pumping?"
        )
        amount_text = format_money(amount, account.currency, lang)
        return "\n".join([head.format(name=name, amount=amount_text), runway])
    if kind == "working":
        return _("✅ Checks of {name} work again. Balance: {balance}.").format(
            name=name, balance=_balance(account)
        )
    raise ValueError(f"unknown alert kind {kind!r}")


def _time(moment: datetime, tz: str) -> str:
    return format_datetime(moment.astimezone(ZoneInfo(tz)), "d MMM HH:mm", locale=texts.locale())
