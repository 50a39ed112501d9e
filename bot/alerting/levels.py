"""Where an account's last balance stands against its levels: the warning threshold, the
critical one and the runway, with the chat's margin for recovery so a hovering balance won't
flap. Pure functions of the account's and chat's columns (mapped rows or plain records)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bot.alerting import forecast
from bot.storage.models import Account, Chat


def critical(account: Account) -> bool:
    return (
        account.last_balance is not None
        and account.critical_threshold is not None
        and account.last_balance < account.critical_threshold
    )


def critical_recovered(chat: Chat, account: Account) -> bool:
    critical = account.critical_threshold
    return critical is None or account.last_balance >= critical * _margin(chat)


def low(account: Account, now: datetime) -> bool:
    """Under the amount threshold (or the critical one), or the forecast runway under the
    runway threshold."""
    if account.last_balance is None:
        return False
    if account.threshold is not None and account.last_balance < account.threshold:
        return True
    if critical(account):
        return True
    days = runway_days(account, now)
    return (
        account.runway_threshold is not None
        and days is not None
        and (days < account.runway_threshold)
    )


def recovered(chat: Chat, account: Account, now: datetime) -> bool:
    """Clear of every level by the chat's margin."""
    factor = _margin(chat)
    if account.threshold is not None and account.last_balance < account.threshold * factor:
        return False
    if not critical_recovered(chat, account):
        return False
    days = runway_days(account, now)
    return (
        account.runway_threshold is None
        or days is None
        or (days >= account.runway_threshold * factor)
    )


def runway_days(account: Account, now: datetime) -> Decimal | None:
    runway = forecast.runway(account.last_balance, account.spend_rate, now)
    return None if runway is None else runway.days


def _margin(chat: Chat) -> Decimal:
    return 1 + chat.hysteresis_percent / Decimal(100)
