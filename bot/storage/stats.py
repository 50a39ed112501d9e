"""What the database says about the bot as a whole, for metrics, health and /status; and which
accounts are checkable, due and held by whom, for the scheduled checks."""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Row,
    Select,
    Update,
    bindparam,
    func,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Account, AccountState, Chat, Notification

PENDING = Notification.sent_at.is_(None) & Notification.failure.is_(None)


async def count_accounts(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(Account.id))) or 0


async def count_active_chats(session: AsyncSession) -> int:
    return await session.scalar(select(func.count(Chat.id)).where(Chat.active.is_(True))) or 0


async def backlog(session: AsyncSession) -> tuple[int, datetime | None]:
    """How many notifications wait, and when the oldest of them was queued."""
    count, oldest = (
        await session.execute(
            select(func.count(Notification.id), func.min(Notification.created_at)).where(PENDING)
        )
    ).one()
    return count, oldest


async def watched_balances(
    session: AsyncSession,
) -> Sequence[
    Row[tuple[str, str | None, str, int, Decimal, Decimal | None, Decimal | None, datetime | None]]
]:
    """(name, login, site, chat_id, balance, credit, spend rate, when checked) of each checked
    account of an active chat."""
    rows = await session.execute(
        select(
            Account.name,
            Account.login,
            Account.site,
            Account.chat_id,
            Account.last_balance,
            Account.last_credit,
            Account.spend_rate,
            Account.last_checked_at,
        )
        .join(Chat, Chat.id == Account.chat_id)
        .where(Chat.active.is_(True), Account.last_balance.is_not(None))
        .order_by(Account.id)
    )
    return rows.all()


async def deliveries_after(
    session: AsyncSession, after: datetime
) -> Sequence[Row[tuple[datetime, datetime]]]:
    """(queued, sent) of each notification sent after `after`."""
    rows = await session.execute(
        select(Notification.created_at, Notification.sent_at).where(Notification.sent_at > after)
    )
    return rows.all()


def checkable(query):
    """Accounts of active chats whose credentials SMSC has not refused."""
    return query.join(Chat, Chat.id == Account.chat_id).where(
        Chat.active.is_(True),
        ~((Account.state == AccountState.CANT_CHECK) & (Account.last_error == "auth")),
    )


async def due_summary(session: AsyncSession, now: datetime) -> tuple[int | None, datetime | None]:
    """The shortest check interval among the accounts due now, and since when the first of
    them is due; (None, None) when none is."""
    query = select(func.min(Account.check_interval), func.min(Account.next_check_at))
    due = await session.execute(checkable(query).where(Account.next_check_at <= now))
    shortest, due_since = due.one()
    return shortest, due_since


def unleased(now: datetime) -> ColumnElement[bool]:
    """Accounts no process holds: never claimed, written since, or their lease run out."""
    return Account.lease_until.is_(None) | (Account.lease_until < now)


# The scheduled checks look for due accounts several times a second: their statements are
# built once, with parameters, not at each look (building one cost more than running it).
NOW, LEASE_UNTIL, LIMIT = bindparam("now"), bindparam("lease_until"), bindparam("limit")
# On PostgreSQL a claim picks its credentials among the first due accounts only, this many for
# each credentials it may take (the parameter `window`): grouping every due account by its
# credentials cost each claim in proportion to all that was due, ≈ 90 ms of the server's at
# 100,000 due (after an outage, or an import), against ≈ 2 ms.
DUE_READ_PER_CLAIMED = 20


@functools.cache
def next_due() -> Select:
    """When the first checkable account unleased at `now` (parameter) is due: an index probe."""
    return (
        checkable(select(Account.next_check_at))
        .where(Account.next_check_at.is_not(None), unleased(NOW))
        .order_by(Account.next_check_at)
        .limit(1)
    )


@functools.cache
def claim_due(dialect: str) -> Update:
    """Lease (until `lease_until`) every checkable, unleased account of up to `limit` due
    credentials, most overdue first, as at `now` (those three are parameters, with `window`:
    see DUE_READ_PER_CLAIMED); returns (credentials_key, site, login, secret, state) of each."""
    now, lease_until, limit = NOW, LEASE_UNTIL, LIMIT
    due = checkable(select(Account.credentials_key)).where(
        Account.next_check_at <= now, unleased(now)
    )
    # All accounts of those credentials, due or not: one answer serves them all.
    wanted = checkable(select(Account.id)).where(unleased(now))
    if dialect == "sqlite":
        # Unordered, SQLite walks every account (by credentials_key, which gives DISTINCT for
        # free) each second, due or not: 13 ms at 10,000 accounts. Ordered, it reads the
        # next_check_at index for what is due. One writer: nothing changes under the UPDATE.
        keys = due.distinct().order_by(Account.next_check_at).limit(limit)
        wanted = wanted.where(Account.credentials_key.in_(keys))
    else:
        # Others refuse ORDER BY a column DISTINCT leaves out: the credentials of the first
        # due accounts (read from the next_check_at index), grouped.
        first = (
            due.add_columns(Account.next_check_at)
            .order_by(Account.next_check_at)
            .limit(bindparam("window"))
            .subquery()
        )
        keys = (
            select(first.c.credentials_key)
            .group_by(first.c.credentials_key)
            .order_by(func.min(first.c.next_check_at))
        )
        # PostgreSQL runs a statement on a snapshot of its start. The due rows are locked, and
        # so asked again as they are now: one read as due, then claimed, checked and written
        # by another process before this statement reached it, is due no more, and its
        # credentials are left out.
        still_due = (
            select(Account.credentials_key)
            .where(
                Account.credentials_key.in_(keys.limit(limit)),
                Account.next_check_at <= now,
                unleased(now),
            )
            .order_by(Account.id)
            .with_for_update(of=Account)
        )
        # A row another transaction is claiming this moment is waited for, then asked
        # `unleased` again: claimed, it is left out. Skipping it (SKIP LOCKED) split the
        # accounts of one login between two processes, which both asked SMSC for it then.
        # Rows are locked in one order everywhere (see `held`), so claims and writes never
        # wait for each other in a circle; a claim waits only for another's short UPDATE, as
        # rows leased already fail `unleased` before they are locked.
        wanted = (
            wanted.where(Account.credentials_key.in_(still_due))
            .order_by(Account.id)
            .with_for_update(of=Account)
        )
    # The UPDATE asks `unleased` again of each row as it writes it (READ COMMITTED).
    return (
        update(Account)
        .where(Account.id.in_(wanted), unleased(now))
        .values(lease_until=lease_until)
        .returning(
            Account.credentials_key, Account.site, Account.login, Account.secret, Account.state
        )
        .execution_options(synchronize_session=False)
    )


def held(query: Select, *, arrays: bool = False) -> Select:
    """`query` of accounts narrowed to those of the claims bound by `held_values` still under the
    lease taken for them (one whose lease ran out and was claimed again is the new holder's),
    locked until the commit (PostgreSQL) so that the lease cannot change hands meanwhile. Built
    once by its callers: building it for each write cost more than running it.

    With `arrays` (PostgreSQL only) the claims are bound as two arrays, unnested: the same SQL
    for any number of claims, where an IN renders a placeholder for each (SQL rendered, and a
    statement prepared by the server, anew for each count: ≈ 3 % of a sweep's CPU)."""
    if arrays:
        claims = (
            func.unnest(
                bindparam("keys", type_=ARRAY(Account.credentials_key.type)),
                bindparam("leases", type_=ARRAY(Account.lease_until.type)),
            )
            .table_valued("key", "lease")
            .render_derived()
        )
        pairs = select(claims.c.key, claims.c.lease)
        narrowed = query.where(tuple_(Account.credentials_key, Account.lease_until).in_(pairs))
    else:
        narrowed = query.where(
            # The keys find the rows by their index: for the pairs alone SQLite scans the table.
            Account.credentials_key.in_(bindparam("keys", expanding=True)),
            tuple_(Account.credentials_key, Account.lease_until).in_(
                bindparam("claims", expanding=True)
            ),
        )
    # Locked in one order everywhere: two writers never wait for each other in a circle.
    return narrowed.order_by(Account.id).with_for_update(of=Account)


def held_values(claims: Collection[tuple[str, datetime]]) -> dict[str, list[Any]]:
    """The values of `held`'s statement, with arrays or not, for these (credentials_key,
    lease_until) claims."""
    keys = [key for key, _lease in claims]
    return {"keys": keys, "claims": list(claims), "leases": [lease for _key, lease in claims]}
