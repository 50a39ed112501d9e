"""What a balance or a failed check means for an account: its state, history, and alerts.

Alerts are written to the outbox (bot.alerting.queue) in the caller's transaction, together
with the state change that causes them: committed together, or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting import acks, levels, reachable, reminders, studies
from bot.alerting.events import Renderer
from bot.alerting.queue import AlertQueue, clear_incident
from bot.smsc.check_errors import CheckError, check_error
from bot.smsc.errors import SmscError
from bot.smsc.guard import BalanceResult
from bot.storage.direct import write_rows
from bot.storage.models import Account, AccountState, BalanceSample, Chat

# Transient faults (network, odd answers) make an account uncheckable only when they repeat.
FAILURES_BEFORE_CANT_CHECK = 3
# History keeps a sample when the balance changes, and at least this often.
SAMPLE_EVERY = timedelta(hours=1)
# A rise of the balance by at least this much, and this many percent, is a top-up; smaller
# ones are refunds of undelivered SMS.
TOP_UP_MINIMUM = Decimal(1)
TOP_UP_SHARE = Decimal(2)

# A history sample's columns, as the checks write it.
SAMPLE_COLUMNS = ("account_id", "taken_at", "balance", "credit")

# What a check ended with: a balance, or why there is none.
Outcome = BalanceResult | SmscError


def checks_stopped(account: Account) -> bool:
    """SMSC refused the credentials: asking again only risks the bot's IP, until /add."""
    return account.state == AccountState.CANT_CHECK and account.last_error == CheckError.AUTH


def recorded(account: Account, outcome: Outcome) -> bool:
    """The balance the account recorded last, served again from the cache: recording it
    again would change nothing."""
    return (
        isinstance(outcome, BalanceResult)
        and outcome.stale
        and outcome.checked_at == account.last_checked_at
    )


class Monitor:
    """Applies check outcomes to accounts and queues the alerts they call for. Callers commit."""

    def __init__(
        self, renderer: Renderer, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._queue = AlertQueue(renderer, now)
        self._now = now

    async def record(
        self,
        session: AsyncSession,
        outcomes: Sequence[tuple[Account, Outcome]],
        chats: Mapping[int, Chat] | None = None,
    ) -> None:
        """Apply check outcomes, however many: their chats (unless given) and history are
        read once for all (a query per account was most of the cost of a check of hundreds).
        The accounts may be mapped instances or plain records (bot.storage.records), and the
        chats rows: only their columns are read and set."""
        # A balance the account has recorded already (the cached answer to a /balance right
        # after a check) changes nothing: nothing is set, so nothing is flushed. A reminder
        # it could have brought comes with the next check.
        outcomes = [
            (account, outcome) for account, outcome in outcomes if not recorded(account, outcome)
        ]
        if not outcomes:
            return
        now = self._now()
        sampled = {
            account.id
            for account, outcome in outcomes
            if isinstance(outcome, BalanceResult) and self._takes_sample(account, outcome, now)
        }
        # Nothing is flushed before the reads: the changes below go to the database in one
        # flush at the caller's commit.
        with session.no_autoflush:
            if chats is None:
                chats = {
                    chat_id: await session.get_one(Chat, chat_id)
                    for chat_id in {account.chat_id for account, _outcome in outcomes}
                }
        connection = await session.connection()
        studied = [
            (account, outcome)
            for account, outcome in outcomes
            if account.id in sampled and studies.study_due(account, now)
        ]
        await studies.study(session, self._queue, studied, chats, now)
        new_samples = []
        for account, outcome in outcomes:
            chat = chats[account.chat_id]
            if isinstance(outcome, SmscError):
                self._record_failure(session, chat, account, outcome)
                continue
            if account.id in sampled:
                new_samples.append(
                    {
                        "account_id": account.id,
                        "taken_at": outcome.checked_at,
                        "balance": outcome.balance.balance,
                        "credit": outcome.balance.credit,
                    }
                )
                account.last_sample_at = now
            self._record_balance(session, chat, account, outcome, now)
        if new_samples:
            # One statement for them all, past the ORM (nothing reads them back).
            await write_rows(connection, BalanceSample.__table__, SAMPLE_COLUMNS, new_samples)
        await self._queue.drop_stale(
            session, {account.id: account for account, _ in outcomes}, chats
        )
        await self._queue.finish(session)

    @staticmethod
    def _takes_sample(account: Account, result: BalanceResult, now: datetime) -> bool:
        return result.fresh and (
            result.balance.balance != account.last_balance
            or account.last_sample_at is None
            or now - account.last_sample_at >= SAMPLE_EVERY
        )

    def _record_balance(
        self,
        session: AsyncSession,
        chat: Chat,
        account: Account,
        result: BalanceResult,
        now: datetime,
    ) -> None:
        balance = result.balance.balance
        previous_balance = account.last_balance
        rise = balance - previous_balance if previous_balance is not None else Decimal(0)
        topped_up = (
            result.fresh
            and rise >= TOP_UP_MINIMUM
            and rise >= abs(previous_balance) * TOP_UP_SHARE / 100
        )
        previous = account.state
        account.last_balance, account.last_credit = balance, result.balance.credit
        account.currency = result.balance.currency
        account.last_checked_at = result.checked_at
        account.failures, account.last_error = 0, None
        if previous == AccountState.CANT_CHECK:
            self._queue.add(session, chat, account, "working")
            self._resolve(session, chat, account)
        if previous == AccountState.LOW:
            if levels.recovered(chat, account, self._now()):
                self._queue.add(session, chat, account, "recovered", silent=True)
                self._resolve(session, chat, account)
                self._set_ok(account)
                return
            lowest = account.lowest_balance
            account.lowest_balance = balance if lowest is None else min(lowest, balance)
            if not self._judge_critical(session, chat, account, now):
                self._maybe_remind(session, chat, account, now)
        elif levels.low(account, self._now()):
            self._open(session, chat, account, now)
            return
        else:
            account.state = AccountState.OK
        if topped_up:
            self._queue.add(session, chat, account, "topup", silent=True, amount=rise)

    def _record_failure(
        self, session: AsyncSession, chat: Chat, account: Account, error: SmscError
    ) -> None:
        kind = check_error(error)
        if kind in (CheckError.RATE_LIMITED, CheckError.AUTH_PAUSED):
            return  # the bot held back or SMSC asked to wait: nothing is known about the account
        account.failures += 1
        account.last_error = kind
        fatal = kind in (CheckError.AUTH, CheckError.IP_BLOCKED, CheckError.SECRET)
        if account.state != AccountState.CANT_CHECK and (
            fatal or account.failures >= FAILURES_BEFORE_CANT_CHECK
        ):
            account.state = AccountState.CANT_CHECK
            self._clear_low(account)
            self._queue.add(session, chat, account, "cant_check", buttons=True)

    async def start_afresh(self, session: AsyncSession, account: Account) -> None:
        """New credentials (/add replacing them): the next balance is judged as a new account's,
        and an incident still open is over, its alert edited to say so, its buttons gone."""
        if account.alert_id is not None:
            self._resolve(session, await session.get_one(Chat, account.chat_id), account)
            await self._queue.finish(session)
        self._clear_low(account)
        account.state, account.last_error, account.failures = AccountState.UNKNOWN, None, 0
        account.last_balance = None

    async def threshold_changed(self, session: AsyncSession, account: Account) -> None:
        """Re-judge the last balance. A threshold set above it is a crossing like any other
        (the alert and its buttons come at once); one lowered under it just ends the alert."""
        if account.state == AccountState.LOW and not levels.low(account, self._now()):
            self._resolve(session, await session.get_one(Chat, account.chat_id), account)
            self._set_ok(account)
        elif account.state == AccountState.OK and levels.low(account, self._now()):
            chat = await session.get(Chat, account.chat_id)
            self._open(session, chat, account, self._now())
        elif account.state == AccountState.LOW and levels.critical(account) != (
            account.critical_since is not None
        ):
            # The critical level moved across the balance: a crossing under it alerts, one
            # lowered under it (or turned off) just ends the critical state.
            if account.critical_since is None:
                chat = await session.get(Chat, account.chat_id)
                self._set_critical(session, chat, account, self._now())
            else:
                account.critical_since = None
        await self._queue.finish(session)

    async def acknowledge(
        self, session: AsyncSession, account: Account, user_id: int, user: str, message_id: int
    ) -> bool:
        """See bot.alerting.acks.acknowledge."""
        return await acks.acknowledge(
            session, self._queue, account, user_id, user, message_id, self._now()
        )

    async def reactivate(self, session: AsyncSession, chat_id: int) -> bool:
        """See bot.alerting.reachable.reactivate."""
        return await reachable.reactivate(session, self._queue, chat_id)

    def snooze(self, account: Account, hours: int) -> datetime:
        account.snoozed_until = self._now() + timedelta(hours=hours)
        return account.snoozed_until

    def mute(self, account: Account, hours: int | None) -> datetime | None:
        """No alerts for the account for `hours` (None: alerts again now, nothing said)."""
        account.muted_until = None if hours is None else self._now() + timedelta(hours=hours)
        return account.muted_until

    def _open(self, session: AsyncSession, chat: Chat, account: Account, now: datetime) -> None:
        """A crossing from OK: one alert, the critical one if the balance is under that too."""
        self._set_low(chat, account, now)
        if levels.critical(account):
            self._set_critical(session, chat, account, now)
        else:
            self._queue.add(session, chat, account, "low", buttons=True)

    def _judge_critical(
        self, session: AsyncSession, chat: Chat, account: Account, now: datetime
    ) -> bool:
        """While low: a crossing under the critical level alerts (once per crossing; it rings,
        and counts as the reminder due then); back above it by the chat's margin, the
        critical state ends with a quiet word, the warning stays. True when an alert went."""
        if account.critical_since is None and levels.critical(account):
            self._set_critical(session, chat, account, now)
            return True
        if account.critical_since is not None and levels.critical_recovered(chat, account):
            account.critical_since = None
            self._queue.add(session, chat, account, "critical_cleared", silent=True)
        return False

    def _set_critical(
        self, session: AsyncSession, chat: Chat, account: Account, now: datetime
    ) -> None:
        account.critical_since = now
        # The next reminder comes no sooner than the first gap after this alert.
        if chat.reminder_hours and account.next_reminder_at is not None:
            gap = now + timedelta(hours=chat.reminder_hours)
            account.next_reminder_at = max(account.next_reminder_at, gap)
        self._queue.add(session, chat, account, "critical", buttons=True)

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
        account.critical_since = None
        account.next_reminder_at = account.snoozed_until = None
        account.reminders_sent = 0
        clear_incident(account)

    def _resolve(self, session: AsyncSession, chat: Chat, account: Account) -> None:
        """The incident is over: its alert is edited to say so, without buttons."""
        if account.alert_id is not None:
            self._queue.edit(session, chat, account, "resolved", account.alert_id)
        clear_incident(account)

    def _maybe_remind(
        self, session: AsyncSession, chat: Chat, account: Account, now: datetime
    ) -> None:
        due = account.next_reminder_at
        if due is None or now < due or not chat.reminder_hours:
            return
        if account.snoozed_until is not None and now < account.snoozed_until:
            return
        if account.acked_at is not None:
            return  # someone is on it
        account.reminders_sent += 1
        account.next_reminder_at = now + reminders.gap(chat.reminder_hours, account.reminders_sent)
        self._queue.add(session, chat, account, "reminder", buttons=True)
