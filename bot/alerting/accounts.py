"""The accounts a chat watches: registering, listing, changing, and asking for balances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Row, func, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import logs
from bot.alerting.monitoring import Monitor, Outcome, checks_stopped, recorded
from bot.alerting.names import named, same_name, valid_name
from bot.alerting.queue import withdraw
from bot.smsc.client import Credentials
from bot.smsc.errors import SmscError
from bot.smsc.guard import BalanceGuard, BalanceResult
from bot.smsc.refusals import CredentialsRejected, SecretUnreadable
from bot.storage.crypto import SecretBox, SecretKeyError
from bot.storage.models import Account, AccountState, Chat

MAX_ACCOUNTS_PER_CHAT = 50


class AccountLimitReached(Exception):
    """The chat already watches MAX_ACCOUNTS_PER_CHAT accounts."""


class AccountExists(Exception):
    """The chat already has an account of that name, and replacing it was not asked for."""


class LevelsOutOfOrder(Exception):
    """The critical level would be above the warning level: nothing was changed."""


@dataclass(frozen=True)
class NewAccount:
    site: str
    login: str | None  # None: `secret` is an API key and `name` a label
    secret: str = field(repr=False)
    name: str
    threshold: Decimal | None = None
    thread_id: int | None = None


def decrypted(box: SecretBox, account: Account | Row[Any]) -> Credentials:
    """An account's credentials, its secret decrypted: of a mapped account, or of a row with
    its `site`, `login` and `secret` (the scheduled checks'); SecretUnreadable, that account's
    failed check, when the secret does not decrypt."""
    try:
        return Credentials(account.site, account.login, box.decrypt(account.secret))
    except SecretKeyError:
        raise SecretUnreadable from None


class AccountService:
    """Account use cases over one database session; knows nothing of Telegram.

    `chat`: the chat of the update, as `bot.storage.chats.ensure_chat` read it with its
    accounts: its `accounts` are then the list, kept so by `add` and `remove`."""

    def __init__(
        self,
        session: AsyncSession,
        box: SecretBox,
        guard: BalanceGuard,
        monitor: Monitor,
        default_interval: int,
        *,
        chat: Chat | None = None,
    ) -> None:
        self._session = session
        self._box = box
        self._guard = guard
        self._monitor = monitor
        self._default_interval = default_interval
        self._chat = chat

    async def list(self, chat_id: int) -> Sequence[Account]:
        """The chat's accounts, by name: the one rule of which accounts a chat may see or
        change. Commands (by name) and buttons (by id) find theirs among these."""
        loaded = self._loaded(chat_id)
        if loaded is not None:
            return [*loaded.accounts]
        query = select(Account).where(Account.chat_id == chat_id).order_by(Account.name)
        return (await self._session.scalars(query)).all()

    def _loaded(self, chat_id: int) -> Chat | None:
        """The chat, if it is `chat_id` and came with its accounts."""
        chat = self._chat
        if chat is None or chat.id != chat_id or "accounts" in inspect(chat).unloaded:
            return None
        return chat

    async def owned(self, chat_id: int, account_id: int) -> Account | None:
        """The chat's account with this id; None when it is gone or another chat's. Every
        button that names an account asks here: its data is the sender's word (any id, even
        one too large for SQLite, hence no query by it)."""
        return next((a for a in await self.list(chat_id) if a.id == account_id), None)

    async def find(self, chat_id: int, name: str) -> Account | None:
        return named(await self.list(chat_id), name)

    async def add(
        self,
        chat_id: int,
        new: NewAccount,
        *,
        replace: bool = False,
        askers: tuple[str, ...] = (),
    ) -> tuple[Account, BalanceResult]:
        """Check the credentials with SMSC, then save; SmscError (nothing saved) if refused.

        A name the chat already has raises AccountExists unless `replace`: then only its
        credentials change (how a chat repairs an account whose password changed), its
        settings stay. `askers` are passed to the guard (see `BalanceGuard.balance`).
        """
        account = await self.find(chat_id, new.name)
        if account is not None and not replace:
            raise AccountExists
        if account is None:
            count = await self._session.scalar(
                select(func.count()).select_from(Account).where(Account.chat_id == chat_id)
            )
            if count >= MAX_ACCOUNTS_PER_CHAT:
                raise AccountLimitReached
        creds = Credentials(new.site, new.login, new.secret)
        key = self._box.keyed_hash(new.site, new.login, new.secret)
        # Credentials some chat watches with success are known good even to a fresh guard.
        watched = select(Account.id).where(
            Account.credentials_key == key, Account.state.in_([AccountState.OK, AccountState.LOW])
        )
        known_good = await self._session.scalar(watched.limit(1)) is not None
        # The reads end here: no pooled connection is held while SMSC answers (seconds at
        # worst), as in bot.storage.chats.ensure_chat.
        await self._session.commit()
        self._guard.retry(creds)
        result = await self._guard.balance(creds, known_good=known_good, askers=askers)
        if account is not None:
            await self._read_again([account])  # its incident as it is now, to end it
        else:
            await self._room_for(chat_id, new.name)
            account = Account(
                chat_id=chat_id,
                name=new.name,
                check_interval=self._default_interval,
                threshold=new.threshold,
                thread_id=new.thread_id,
            )
            self._session.add(account)
            if (loaded := self._loaded(chat_id)) is not None:
                loaded.accounts.append(account)
        account.site, account.login = new.site, new.login
        logs.remember(new.secret)  # stored from now on (SecretBox.decrypt does the same)
        account.secret = self._box.encrypt(new.secret)
        account.credentials_key = key
        await self._monitor.start_afresh(self._session, account)
        await self._session.flush()
        await self._monitor.record(self._session, [(account, result)])
        account.next_check_at = datetime.now(UTC) + timedelta(seconds=account.check_interval)
        await self._session.commit()
        return account, result

    async def _room_for(self, chat_id: int, name: str) -> None:
        """AccountLimitReached or AccountExists as the chat is now, its adds then held back
        until the commit: another /add of the chat (a second admin, a double tap) may have
        saved one while SMSC answered, and both counted 49 before."""
        # The names are read after any other add's commit. (Two adds of one name were both
        # saved when their letter cases differed, else met the unique constraint's error.)
        await self._lock(Chat, chat_id)
        names = await self._session.scalars(select(Account.name).where(Account.chat_id == chat_id))
        taken = names.all()
        exists = any(same_name(other, name) for other in taken)
        if exists or len(taken) >= MAX_ACCOUNTS_PER_CHAT:
            await self._session.rollback()  # the lock is not held while the refusal is sent
            raise AccountExists if exists else AccountLimitReached

    async def _lock(self, model: type[Chat] | type[Account], id_: int) -> None:
        """A write to the row, a no-op: it takes the row's lock on PostgreSQL and SQLite's one
        writer lock, both held until the commit, waiting for any other writer's commit."""
        touch = update(model).where(model.id == id_).values(id=model.id)
        await self._session.execute(touch.execution_options(synchronize_session=False))

    async def check(self, account: Account) -> BalanceResult:
        """The account's balance through the shared guard; SmscError if there is none."""
        [(_account, result)] = await self.balances([account])
        if isinstance(result, SmscError):
            raise result
        return result

    async def balances(self, accounts: Sequence[Account]) -> list[tuple[Account, Outcome]]:
        """Every account's balance, asked side by side (the guard makes that cheap and safe);
        state and alerts follow the answers."""
        results = await asyncio.gather(
            *(self._ask(account) for account in accounts), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, SmscError):
                raise result
        answers = list(zip(accounts, results, strict=True))
        # Balances the accounts recorded already (the cache's answers after a check) change
        # nothing (see Monitor.record): then there is no transaction to commit either.
        if not all(recorded(account, outcome) for account, outcome in answers):
            await self._read_again(accounts)
            await self._monitor.record(self._session, answers)
            await self._session.commit()
        return answers

    async def _read_again(self, accounts: Sequence[Account]) -> None:
        """The accounts as they are now, locked until the commit where the database has row
        locks: a scheduled check may have recorded a balance while SMSC answered, and an
        outcome judged against the account as read before would alert a crossing again."""
        # Locked in id order, as everywhere (bot.storage.stats.held): no waiting in a circle.
        query = select(Account).where(Account.id.in_([account.id for account in accounts]))
        query = query.order_by(Account.id).with_for_update()
        await self._session.scalars(query.execution_options(populate_existing=True))

    async def _ask(self, account: Account) -> BalanceResult:
        if checks_stopped(account):
            # The guard forgets refused credentials on restart; the account remembers.
            raise CredentialsRejected
        # Checked fine before (maybe before a restart): not held back with never-verified ones.
        known_good = account.state in (AccountState.OK, AccountState.LOW)
        # The keyed hash names exactly these credentials: decrypted once, not per answer.
        key = account.credentials_key
        creds = self._guard.remembered(key, partial(decrypted, self._box, account))
        return await self._guard.balance(creds, known_good=known_good, key=key)

    async def set_threshold(self, account: Account, threshold: Decimal | None) -> None:
        critical = account.critical_threshold
        if threshold is not None and critical is not None and critical > threshold:
            raise LevelsOutOfOrder
        account.threshold = threshold
        await self._monitor.threshold_changed(self._session, account)
        await self._session.commit()

    async def set_critical_threshold(self, account: Account, critical: Decimal | None) -> None:
        """The second, lower level (None: off); LevelsOutOfOrder above the warning level."""
        if critical is not None and account.threshold is not None and critical > account.threshold:
            raise LevelsOutOfOrder
        account.critical_threshold = critical
        await self._monitor.threshold_changed(self._session, account)
        await self._session.commit()

    async def set_runway_threshold(self, account: Account, days: int | None) -> None:
        account.runway_threshold = days
        await self._monitor.threshold_changed(self._session, account)
        await self._session.commit()

    async def snooze(self, account: Account, hours: int) -> datetime:
        """No reminders for the account for `hours`; the time they resume."""
        until = self._monitor.snooze(account, hours)
        await self._session.commit()
        return until

    async def mute(self, account: Account, hours: int | None) -> datetime | None:
        """No alerts for the account for `hours` (checks go on), or alerts again (None);
        a mute that ends by itself is said within a minute (bot.alerting.mutes)."""
        until = self._monitor.mute(account, hours)
        await self._session.commit()
        return until

    async def rename(self, account: Account, name: str) -> None:
        """ValueError for a name /add would refuse (see valid_name); AccountExists for
        another account's name in any letter case."""
        if not valid_name(name):
            raise ValueError("bad name")
        other = await self.find(account.chat_id, name)
        if other is not None and other.id != account.id:
            raise AccountExists
        account.name = name
        await self._session.commit()

    async def acknowledge(self, account: Account, user_id: int, user: str, message_id: int) -> bool:
        """`user` takes the account's open incident; False if someone has it or none is open
        (see Monitor.acknowledge)."""
        return await self._monitor.acknowledge(self._session, account, user_id, user, message_id)

    async def set_interval(self, account: Account, seconds: int) -> None:
        account.check_interval = seconds
        account.next_check_at = datetime.now(UTC) + timedelta(seconds=seconds)
        await self._session.commit()

    async def remove(self, account: Account) -> None:
        """The account goes, and its alerts not sent yet with it (see queue.withdraw)."""
        # Its row first: an alert a check, a mute's end or an escalation is queueing for it
        # right now (their transactions hold the row) is withdrawn too, not left to go out with
        # no account (the foreign key only sets the alerts' account_id to NULL).
        await self._lock(Account, account.id)
        await withdraw(self._session, account.id, datetime.now(UTC))
        loaded = self._loaded(account.chat_id)
        if loaded is not None and account in loaded.accounts:
            loaded.accounts.remove(account)  # an orphan now: deleted by the next flush
        await self._session.delete(account)
        await self._session.commit()
