"""What a balance or a failed check means for an account: its state, history, and alerts.

Alerts are written to the outbox (`Notification`) in the caller's transaction, together with
the state change that causes them: committed together, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from aiogram.utils.i18n import I18n
from sqlalchemy.ext.asyncio import AsyncSession

from bot import alerts
from bot.check_errors import CheckError, check_error
from bot.guard import BalanceResult
from bot.models import Account, AccountState, BalanceSample, Chat, Notification
from bot.smsc import SmscError

# Transient faults (network, odd answers) make an account uncheckable only when they repeat.
FAILURES_BEFORE_CANT_CHECK = 3
# History keeps a sample when the balance changes, and at least this often.
SAMPLE_EVERY = timedelta(hours=1)
# Reminders come after reminder_hours, then twice as long each time, but at least weekly.
LONGEST_REMINDER_GAP = timedelta(days=7)


def checks_stopped(account: Account) -> bool:
    """SMSC refused the credentials: asking again only risks the bot's IP, until /add."""
    return account.state == AccountState.CANT_CHECK and account.last_error == CheckError.AUTH


class Monitor:
    """Applies check outcomes to accounts and queues the alerts they call for. Callers commit."""

    def __init__(self, i18n: I18n, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._i18n = i18n
        self._now = now

    async def record(self, session: AsyncSession, account: Account, result: BalanceResult) -> None:
        now = self._now()
        balance = result.balance
        if result.fresh and (
            balance.balance != account.last_balance
            or account.last_sample_at is None
            or now - account.last_sample_at >= SAMPLE_EVERY
        ):
            session.add(
                BalanceSample(
                    account_id=account.id,
                    taken_at=result.checked_at,
                    balance=balance.balance,
                    credit=balance.credit,
                )
            )
            account.last_sample_at = now
        previous = account.state
        account.last_balance, account.last_credit = balance.balance, balance.credit
        account.currency = balance.currency
        account.last_checked_at = result.checked_at
        account.failures, account.last_error = 0, None
        chat = await session.get(Chat, account.chat_id)
        if previous == AccountState.CANT_CHECK:
            self._notify(session, chat, account, "working")
        if previous == AccountState.LOW:
            if self._recovered(chat, account):
                self._notify(session, chat, account, "recovered", silent=True)
                self._set_ok(account)
            else:
                account.lowest_balance = min(
                    account.lowest_balance or balance.balance, balance.balance
                )
                self._maybe_remind(session, chat, account, now)
        elif self._low(account):
            self._set_low(chat, account, now)
            self._notify(session, chat, account, "low", buttons=True)
        else:
            account.state = AccountState.OK

    async def record_failure(
        self, session: AsyncSession, account: Account, error: SmscError
    ) -> None:
        kind = check_error(error)
        if kind in (CheckError.RATE_LIMITED, CheckError.AUTH_PAUSED):
            return  # the bot held back or SMSC asked to wait: nothing is known about the account
        account.failures += 1
        account.last_error = kind
        fatal = kind in (CheckError.AUTH, CheckError.IP_BLOCKED)
        if account.state != AccountState.CANT_CHECK and (
            fatal or account.failures >= FAILURES_BEFORE_CANT_CHECK
        ):
            account.state = AccountState.CANT_CHECK
            self._clear_low(account)
            chat = await session.get(Chat, account.chat_id)
            self._notify(session, chat, account, "cant_check")

    async def threshold_changed(self, session: AsyncSession, account: Account) -> None:
        """Re-judge the last balance silently: the person who changed it sees the result."""
        if account.state == AccountState.LOW and not self._low(account):
            self._set_ok(account)
        elif account.state == AccountState.OK and self._low(account):
            self._set_low(await session.get(Chat, account.chat_id), account, self._now())

    def snooze(self, account: Account, hours: int) -> datetime:
        account.snoozed_until = self._now() + timedelta(hours=hours)
        return account.snoozed_until

    @staticmethod
    def _low(account: Account) -> bool:
        return (
            account.threshold is not None
            and account.last_balance is not None
            and account.last_balance < account.threshold
        )

    @staticmethod
    def _recovered(chat: Chat, account: Account) -> bool:
        if account.threshold is None:
            return True
        margin = account.threshold * chat.hysteresis_percent / Decimal(100)
        return account.last_balance >= account.threshold + margin

    @staticmethod
    def _set_low(chat: Chat, account: Account, now: datetime) -> None:
        account.state = AccountState.LOW
        account.low_since, account.lowest_balance = now, account.last_balance
        account.reminders_sent, account.snoozed_until = 0, None
        account.next_reminder_at = (
            now + timedelta(hours=chat.reminder_hours) if chat.reminder_hours else None
        )

    def _set_ok(self, account: Account) -> None:
        account.state = AccountState.OK
        self._clear_low(account)

    @staticmethod
    def _clear_low(account: Account) -> None:
        account.low_since = account.lowest_balance = None
        account.next_reminder_at = account.snoozed_until = None
        account.reminders_sent = 0

    def _maybe_remind(
        self, session: AsyncSession, chat: Chat, account: Account, now: datetime
    ) -> None:
        due = account.next_reminder_at
        if due is None or now < due or not chat.reminder_hours:
            return
        if account.snoozed_until is not None and now < account.snoozed_until:
            return
        account.reminders_sent += 1
        gap = timedelta(hours=chat.reminder_hours) * 2**account.reminders_sent
        account.next_reminder_at = now + min(gap, LONGEST_REMINDER_GAP)
        self._notify(session, chat, account, "reminder", buttons=True)

    def _notify(
        self,
        session: AsyncSession,
        chat: Chat,
        account: Account,
        kind: str,
        *,
        silent: bool = False,
        buttons: bool = False,
    ) -> None:
        with self._i18n.context(), self._i18n.use_locale(chat.language):
            text = alerts.render(kind, account)
            markup = alerts.buttons(account) if buttons else None
        session.add(
            Notification(
                chat_id=account.chat_id,
                thread_id=account.thread_id,
                account_id=account.id,
                kind=kind,
                text=text,
                reply_markup=markup.model_dump_json(exclude_none=True) if markup else None,
                silent=silent,
                next_attempt_at=self._now(),
            )
        )
