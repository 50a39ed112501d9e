"""Texts shared by replies and alerts, in the current i18n locale (HTML parse mode)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from bot.alerting import forecast
from bot.smsc.check_errors import CheckError
from bot.smsc.guard import BalanceResult
from bot.smsc.sites import site_label
from bot.storage.models import Account, AccountState
from bot.telegram.formatting import (
    format_age,
    format_amount,
    format_money,
    needs_year,
    quoted,
)

HOUR = timedelta(hours=1)


def locale() -> str:
    return get_i18n().current_locale


def bold(name: str) -> str:
    return f"<b>{escape(name)}</b>"


def unknown_account(name: str) -> str:
    return _("No account named {name} here. /accounts lists them.").format(name=bold(quoted(name)))


def no_alert(name: str) -> str:
    """For an account without a low-balance level: how to set one."""
    return _("No low-balance alert is set: /threshold {name} &lt;amount&gt;").format(
        name=escape(name)
    )


def kept_account(dialog: dict[str, Any]) -> str:
    """What an /add dialog ended at its last question (the threshold) leaves, from the dialog's
    data: the account was saved as soon as SMSC accepted its password, before that question."""
    name = dialog["name"]
    if dialog.get("replace"):
        return _(
            "The new credentials of {name} stay saved; its alert levels are as they were."
        ).format(name=bold(name))
    return "\n".join(
        (
            _("The account {name} stays registered (it was saved when SMSC accepted it).").format(
                name=bold(name)
            ),
            no_alert(name),
            _("To remove it: /remove {name}").format(name=escape(name)),
        )
    )


def kept_for_others(dialog: dict[str, Any], *, bot_removed: bool) -> str:
    """What an /add dialog ended at its last question leaves, told to a user who may no longer
    act on it there: demoted since it began, or the group removed the bot (`bot_removed`). No
    command to send: they would be refused."""
    name = bold(dialog["name"])
    if bot_removed:
        return _(
            "I'm no longer in that group. The account {name} stays registered there (it was "
            "saved when SMSC accepted it) and is checked again once I'm added back."
        ).format(name=name)
    if dialog.get("replace"):
        return _(
            "The new credentials of {name} stay saved; its alert levels are as they were."
        ).format(name=name)
    return _(
        "The account {name} stays registered (it was saved when SMSC accepted it), with no "
        "low-balance alert: an administrator of that chat can set one there, or remove it."
    ).format(name=name)


def busy(seconds: float) -> str:
    return _(
        "Charts take a while to draw, and this chat asked for many just now. "
        "Please try again in {seconds} s."
    ).format(seconds=math.ceil(seconds))


def not_in_group() -> str:
    """To an admin adding an account to a group that removed the bot (bot.telegram.admins)."""
    return _("I'm no longer in that group: add me back to it, then send /add there.")


def button_out_of_date() -> str:
    return _("This button is out of date.")


def check_error(kind: CheckError | str) -> str:
    texts = {
        CheckError.AUTH: _(
            "SMSC refused the login or password, or this bot's IP address is not in the "
            "account's allow-list. Check them and register the account again with /add."
        ),
        CheckError.IP_BLOCKED: _(
            "SMSC has temporarily blocked the bot's IP address after failed logins. "
            "Checks resume by themselves in about 30 minutes."
        ),
        CheckError.RATE_LIMITED: _(
            "SMSC allows 10 balance requests a minute per login and that budget is used up. "
            "Try again in a minute."
        ),
        CheckError.AUTH_PAUSED: _(
            "SMSC refused several logins or passwords at this site lately. So that it does not "
            "block the bot's IP, this login is not checked for now; checks resume within half "
            "an hour."
        ),
        CheckError.UNAVAILABLE: _("SMSC is not reachable right now. Try again later."),
        CheckError.PROTOCOL: _("SMSC gave an unexpected answer. Try again later."),
        CheckError.SECRET: _(
            "The bot cannot decrypt the password or API key it stored for this account (its "
            "SECRET_KEY is not the one they were saved with). Register the account again with "
            "/add."
        ),
    }
    return texts[CheckError(kind)]


def state_label(state: AccountState) -> str:
    return {
        AccountState.UNKNOWN: _("not checked yet"),
        AccountState.OK: _("OK"),
        AccountState.LOW: _("warning"),
        AccountState.CANT_CHECK: _("can't check"),
    }[state]


def account_state(account: Account) -> str:
    """OK, warning or critical (a LOW account under its critical level), and the others."""
    if account.state == AccountState.LOW and account.critical_since is not None:
        return _("critical")
    return state_label(account.state)


def interval_label(seconds: int) -> str:
    # One English form, but Russian "every" agrees with the number: каждую 1 (21) мин, каждые 5.
    if seconds % 60:
        return ngettext("every {seconds} s", "every {seconds} s", seconds).format(seconds=seconds)
    minutes = seconds // 60
    return ngettext("every {minutes} min", "every {minutes} min", minutes).format(minutes=minutes)


def local_time(moment: datetime, tz: str) -> str:
    """'6 Dec 14:30 (Europe/Moscow)': a moment in the chat's time zone."""
    when = format_datetime(moment, "d MMM HH:mm", tzinfo=ZoneInfo(tz), locale=locale())
    return f"{when} ({tz})"


def muted_text(account: Account, tz: str) -> str | None:
    """'🔕 Muted until 6 Dec 14:30 (UTC)' while the account is muted, else None."""
    until = account.muted_until
    if until is None or until <= datetime.now(UTC):
        return None
    return "🔕 " + _("Muted until {time}").format(time=local_time(until, tz))


def no_forecast(account: Account) -> str:
    """Why an account has no runway: too short a history, or nothing spent lately."""
    if account.spend_rate is None:
        return _("too little history to forecast")
    return _("no spending lately")


def account_runway(account: Account, now: datetime) -> forecast.Runway | None:
    """The account's runway from when its balance was read: from now, a balance read days ago
    (an account that can't be checked, or is checked daily) seemed to last those days more."""
    if account.last_balance is None:
        return None
    return forecast.runway(account.last_balance, account.spend_rate, account.last_checked_at or now)


def runway_text(account: Account, now: datetime, tz: str) -> str:
    """'enough for ~12 days (until 6 Dec)', in hours under a day, or why there is no forecast."""
    runway = account_runway(account, now)
    if runway is None:
        return no_forecast(account)
    # Run out also when read longer ago than it lasts (an account that can't be checked).
    if account.last_balance <= 0 or runway.until <= now:
        return _("the money has run out")
    if runway.days >= forecast.MAX_RUNWAY_DAYS:  # where the forecast stops: no date to give
        years = int(forecast.MAX_RUNWAY_DAYS) // 365
        text = ngettext("enough for over {years} year", "enough for over {years} years", years)
        return text.format(years=years)
    zone, left = ZoneInfo(tz), runway.until - now
    if left >= forecast.DAY:
        days = left.days
        text = ngettext(
            "enough for ~{days} day (until {date})", "enough for ~{days} days (until {date})", days
        )
        pattern = "d MMM y" if needs_year(runway.until, now) else "d MMM"
        until = format_date(runway.until.astimezone(zone), pattern, locale=locale())
        return text.format(days=format_decimal(days, locale=locale()), date=until)
    # Under a day, the most urgent case, "~0 days" told nothing: the hours, and the hour they
    # end at, both from `until` (a date alone disagreed with them: "~16 h (until 4 Dec)" at
    # 08:30 for 00:30 on the 5th).
    hours = left // HOUR
    if not hours:
        return _("enough for less than an hour")
    until = format_datetime(runway.until, "d MMM HH:mm", tzinfo=zone, locale=locale())
    return _("enough for ~{hours} h (until {date})").format(hours=hours, date=until)


def balance_text(account: Account, result: BalanceResult, tz: str) -> str:
    """`<b>login</b>: 1 234.50 RUB (credit 100.00), as of 5 minutes ago` and the runway."""
    lang = locale()
    balance = result.balance
    text = f"{bold(account.name)}: " + format_money(balance.balance, balance.currency, lang)
    if balance.credit:
        text += " " + _("(credit {credit})").format(credit=format_amount(balance.credit, lang))
    if result.stale:
        text += ", " + _("as of {age}").format(age=format_age(result.age, lang))
    critical = account.critical_threshold
    if critical is not None and balance.balance < critical:
        text += " 🚨 " + _("critical: below {threshold}").format(
            threshold=format_amount(critical, lang)
        )
    elif account.threshold is not None and balance.balance < account.threshold:
        text += " ⚠️ " + _("warning: below {threshold}").format(
            threshold=format_amount(account.threshold, lang)
        )
    runway = runway_text(account, datetime.now(UTC), tz)
    return text + "\n" + _("Runway: {runway}.").format(runway=runway)


def account_text(account: Account) -> str:
    """One account in /accounts: name, site, last balance and age, threshold, interval, state."""
    lang = locale()
    lines = [f"{bold(account.name)} · {escape(site_label(account.site))}"]
    if account.last_balance is not None and account.last_checked_at is not None:
        age = (datetime.now(UTC) - account.last_checked_at).total_seconds()
        lines.append(
            _("Balance: {balance}, {age}").format(
                balance=format_money(account.last_balance, account.currency, lang),
                age=format_age(age, lang),
            )
        )
    threshold = (
        format_amount(account.threshold, lang) if account.threshold is not None else _("off")
    )
    lines.append(
        _("Threshold: {threshold} · checked {interval}").format(
            threshold=threshold, interval=interval_label(account.check_interval)
        )
    )
    if account.critical_threshold is not None:
        lines.append(
            _("Critical level: {threshold}").format(
                threshold=format_amount(account.critical_threshold, lang)
            )
        )
    state = account_state(account)
    if account.state == AccountState.CANT_CHECK and account.last_error:
        state += " — " + check_error(account.last_error)
    lines.append(_("State: {state}").format(state=state))
    return "\n".join(lines)
