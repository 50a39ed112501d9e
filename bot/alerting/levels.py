"""Where an account's last balance stands against its levels: the warning threshold, the
critical one and the runway, with the chat's margin for recovery so a hovering balance won't
flap. Pure functions of the account's and chat's columns (mapped rows or plain records)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from bot.alerting import forecast
from bot.storage.models import Account, Chat

# The least margin in money (a rouble, a dollar...) in a chat with a margin at all.
MIN_MARGIN = Decimal(1)


def critical(account: Account) -> bool:
    return (
        account.last_balance is not None
        and account.critical_threshold is not None
        and account.last_balance < account.critical_threshold
    )


def critical_recovered(chat: Chat, account: Account) -> bool:
    critical = account.critical_threshold
    return critical is None or account.last_balance >= _restored(chat, critical)


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
    threshold = account.threshold
    if threshold is not None and account.last_balance < _restored(chat, threshold):
        return False
    if not critical_recovered(chat, account):
        return False
    days = runway_days(account, now)
    return (
        account.runway_threshold is None
        or days is None
        or (days >= account.runway_threshold * (1 + chat.hysteresis_percent / Decimal(100)))
    )


def runway_days(account: Account, now: datetime) -> Decimal | None:
    runway = forecast.runway(account.last_balance, account.spend_rate, now)
    return None if runway is None else runway.days


def _restored(chat: Chat, level: Decimal) -> Decimal:
    """Where a balance under `level` counts as restored: the chat's margin above it, and at
    least MIN_MARGIN above (a share of a threshold of 0 is nothing: a balance hovering
    around 0 would flap). A chat's margin of 0 is none at all."""
    if not chat.hysteresis_percent:
        return level
    return level + max(level * chat.hysteresis_percent / 100, MIN_MARGIN)
