"""What scheduled checks learned, written: the accounts of a batch of claims read as plain rows,
the monitor's rules applied to them, and what changed written in the caller's transaction.

Thousands of accounts go through here a minute, so past the ORM (bot.storage.records): no
mapped instance, no unit of work. The accounts are read now, not before the request: one
removed, re-added with other credentials, stopped or taken over by another process meanwhile
is left alone (bot.storage.stats.held).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, BigInteger, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting.monitoring import Monitor, Outcome
from bot.alerting.queue import QUEUED
from bot.storage import direct, records
from bot.storage.models import Account, Chat
from bot.storage.records import Record, write
from bot.storage.stats import checkable, held, held_values

log = logging.getLogger(__name__)

# Credentials checked under one lease: its key, and when the lease taken for it runs out.
Claim = tuple[str, datetime]

# What a check reads of an account: what the monitor and the alerts look at; not the
# credentials, used for the request already, nor the times only set (a sweep's CPU goes on
# every value read: an UTC datetime costs microseconds).
CHECKED = [
    column
    for column in Account.__table__.c
    if column.key not in ("login", "secret", "created_at", "next_check_at")
]

# What a check reads of a chat: what the monitor's rules and the alerts' wording look at (a
# sweep reads about one chat per account).
CHAT_READ = [
    Chat.__table__.c[name]
    for name in (
        "id",
        "language",
        "timezone",
        "quiet_hours",
        "reminder_hours",
        "hysteresis_percent",
        "anomaly_factor",
        "anomaly_minimum",
    )
]

# Built once, with parameters: building a statement cost more than running it.
_ACCOUNTS = held(checkable(select(*CHECKED)), arrays=True)  # PostgreSQL's
# On PostgreSQL the chats' ids go as one array, unnested: the same SQL for any number, where
# an IN of a batch's few hundred ids was rendered for each batch (≈ 1.5 ms of the bot's CPU a
# batch more). Not `= ANY(array)`: its plan scanned every chat, ≈ 4 times the server's CPU.
_CHATS = select(*CHAT_READ).where(
    Chat.__table__.c.id.in_(select(func.unnest(bindparam("ids", type_=ARRAY(BigInteger)))))
)
# On SQLite both are read by the driver itself, one trip to aiosqlite's thread each where
# SQLAlchemy's cursor took four (bot.storage.direct.listed); the accounts by their credentials
# alone, whose leases are matched to the claims' here (SQLite has one writer: nothing to lock).
_ACCOUNTS_LISTED = (
    checkable(select(*CHECKED))
    .where(Account.credentials_key.in_(direct.listed("keys")))
    .order_by(Account.id)
)
_CHATS_LISTED = select(*CHAT_READ).where(Chat.__table__.c.id.in_(direct.listed("ids")))


async def write_outcomes(
    session: AsyncSession,
    outcomes: Mapping[Claim, Outcome],
    monitor: Monitor,
    now: datetime,
    next_gap: Callable[[Record, float | None], timedelta],
) -> tuple[bool, list[str]]:
    """Apply the outcomes to the accounts still under their claims, each next checked
    `next_gap(account, retry_after)` from `now`, and commit; whether notifications were
    queued, and the kinds of the alerts raised."""
    connection = await session.connection()
    # Records, not rows: the rules read the chat's columns by name, for each of its accounts.
    if (held_connection := await direct.on(connection)) is not None:
        keys = [key for key, _lease in outcomes]
        read = await records.read(held_connection, _ACCOUNTS_LISTED, {"keys": keys})
        accounts = [a for a in read if (a.credentials_key, a.lease_until) in outcomes]
        ids = list({account.chat_id for account in accounts})
        found = await records.read(held_connection, _CHATS_LISTED, {"ids": ids})
    else:
        accounts = records.records(await connection.execute(_ACCOUNTS, held_values(outcomes)))
        ids = list({account.chat_id for account in accounts})
        found = records.records(await connection.execute(_CHATS, {"ids": ids}))
    chats = {chat.id: chat for chat in found}
    answers = [
        (account, outcomes[account.credentials_key, account.lease_until]) for account in accounts
    ]
    await monitor.record(session, answers, chats)
    # One next check for the accounts of one login with the same interval: they are claimed
    # and checked together in any case, and the jitter keeps logins apart, not accounts.
    next_checks: dict[tuple[str, int], datetime] = {}
    for account, outcome in answers:
        group = account.credentials_key, account.check_interval
        if (next_check := next_checks.get(group)) is None:
            retry = getattr(outcome, "retry_after", None)  # the guard's refusals say when
            next_check = next_checks[group] = now + next_gap(account, retry)
        account.next_check_at = next_check
        account.lease_until = None
    await write(connection, Account.__table__, accounts)
    queued = session.info.pop(QUEUED, [])  # issue 15: openings are flushed early
    raised = [item.kind for item in queued if item in session and item.failure is None]
    notified = bool(queued or session.new)  # edits of alerts are new, not queued
    await session.commit()
    log.debug("checks written logins=%s accounts=%s", len(outcomes), len(accounts))
    return notified, raised
