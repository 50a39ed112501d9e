"""What a balance or a failed check means for an account: its state, history, and alerts."""

from __future__ import annotations

import enum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.guard import AuthChecksPaused, BalanceResult
from bot.models import Account, AccountState, BalanceSample
from bot.smsc import (
    SmscAuthError,
    SmscError,
    SmscIpBlocked,
    SmscRateLimited,
    SmscUnavailable,
)

# Transient faults (network, odd answers) make an account uncheckable only when they repeat.
FAILURES_BEFORE_CANT_CHECK = 3


class CheckError(enum.StrEnum):
    """Why a check failed, as stored in Account.last_error and worded for people in texts."""

    AUTH = "auth"  # wrong login/password, or IP not in the account's allow-list
    IP_BLOCKED = "ip_blocked"
    RATE_LIMITED = "rate_limited"
    AUTH_PAUSED = "auth_paused"  # the bot holds back new credentials to protect its IP
    UNAVAILABLE = "unavailable"
    PROTOCOL = "protocol"


def check_error(error: SmscError) -> CheckError:
    # Order matters: guard refusals subclass the SMSC errors they stand for.
    kinds: list[tuple[type[SmscError], CheckError]] = [
        (SmscAuthError, CheckError.AUTH),
        (SmscIpBlocked, CheckError.IP_BLOCKED),
        (SmscRateLimited, CheckError.RATE_LIMITED),
        (AuthChecksPaused, CheckError.AUTH_PAUSED),
        (SmscUnavailable, CheckError.UNAVAILABLE),
    ]
    return next((kind for cls, kind in kinds if isinstance(error, cls)), CheckError.PROTOCOL)


def _immediately_fatal(kind: CheckError) -> bool:
    return kind in (CheckError.AUTH, CheckError.IP_BLOCKED)


class Monitor:
    """Applies check outcomes to accounts. Callers commit."""

    def record(self, session: AsyncSession, account: Account, result: BalanceResult) -> None:
        balance = result.balance
        if result.fresh:
            session.add(
                BalanceSample(
                    account_id=account.id,
                    taken_at=result.checked_at,
                    balance=balance.balance,
                    credit=balance.credit,
                )
            )
        account.last_balance, account.last_credit = balance.balance, balance.credit
        account.currency = balance.currency
        account.last_checked_at = result.checked_at
        account.failures, account.last_error = 0, None
        account.state = self._balance_state(account)

    def record_failure(self, session: AsyncSession, account: Account, error: SmscError) -> None:
        kind = check_error(error)
        if kind in (CheckError.RATE_LIMITED, CheckError.AUTH_PAUSED):
            return  # the bot held back or SMSC asked to wait: nothing is known about the account
        account.failures += 1
        account.last_error = kind
        if _immediately_fatal(kind) or account.failures >= FAILURES_BEFORE_CANT_CHECK:
            account.state = AccountState.CANT_CHECK

    def threshold_changed(self, session: AsyncSession, account: Account) -> None:
        if account.state in (AccountState.OK, AccountState.LOW):
            account.state = self._balance_state(account)

    @staticmethod
    def _balance_state(account: Account) -> AccountState:
        low = (
            account.threshold is not None
            and account.last_balance is not None
            and account.last_balance < account.threshold
        )
        return AccountState.LOW if low else AccountState.OK
