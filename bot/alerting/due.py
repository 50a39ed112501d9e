"""Due accounts for the scheduled checks (bot.alerting.scheduling): when the first falls due,
and the accounts of the first due credentials, leased to the process that claims them."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.alerting.accounts import decrypted
from bot.alerting.outcomes import Claim
from bot.smsc.client import Credentials
from bot.smsc.guard import BalanceGuard
from bot.smsc.refusals import SecretUnreadable
from bot.storage.crypto import SecretBox
from bot.storage.direct import Direct
from bot.storage.models import AccountState
from bot.storage.stats import DUE_READ_PER_CLAIMED, claim_due, next_due

# Credentials to check, or in place of those whose secret does not decrypt, that error: their
# check fails without a request.
Checkable = Credentials | SecretUnreadable
# Claimed credentials, each with whether SMSC ever accepted them.
Due = dict[Claim, tuple[Checkable, bool]]


async def first_due(engine: AsyncEngine, held: Direct | None, now: datetime) -> datetime | None:
    """When the first checkable account unleased at `now` is due: an index probe, on the looks'
    held connection where there is one (bot.storage.direct)."""
    if held is not None:
        first = await held.records(next_due(), {"now": now})
        return first[0][0] if first else None
    async with engine.connect() as connection:
        return (await connection.execute(next_due(), {"now": now})).scalar()


async def lease_due(
    sessionmaker: async_sessionmaker[AsyncSession],
    held: Direct | None,
    turn: AbstractAsyncContextManager[Any],
    guard: BalanceGuard,
    box: SecretBox,
    now: datetime,
    lease: datetime,
    limit: int,
) -> tuple[Due, bool]:
    """Lease until `lease` the accounts of up to `limit` credentials due at `now` (see
    claim_due), in `turn` to write, on the looks' held connection where there is one (one
    statement, its own transaction: one trip to aiosqlite's thread where a session's took six);
    each credentials with whether SMSC ever accepted them, and whether more may be due."""
    window = limit * DUE_READ_PER_CLAIMED
    values = {"now": now, "lease_until": lease, "limit": limit, "window": window}
    if held is not None:
        async with turn:
            rows = await held.rows(claim_due("sqlite"), values)
    else:
        async with sessionmaker() as session:
            connection = await session.connection()
            async with turn:
                claim = claim_due(connection.dialect.name)
                rows = (await connection.execute(claim, values)).all()
                await session.commit()
    due: Due = {}
    for row in rows:
        # By position: a row's attribute costs ten times as much (SQLAlchemy looks it up after
        # the attribute lookup has failed), and there is one row an account. The state is
        # compared as the text it is stored as (a StrEnum is equal to its text).
        key, _site, _login, _secret, state = row
        good = state in (AccountState.OK, AccountState.LOW)
        if (key, lease) in due:
            creds, known_good = due[key, lease]
            due[key, lease] = creds, known_good or good
        else:
            # The key names exactly these credentials: decrypted at the first check only.
            try:
                creds = guard.remembered(key, partial(decrypted, box, _Leased._make(row)))
            except SecretUnreadable as error:  # the claim's other credentials go on
                creds = error
            due[key, lease] = creds, good
    # Fewer credentials than asked is the end of what is due, unless as many accounts as the
    # claim looked at were leased: the credentials of those it did not see may be due too.
    return due, len(due) >= limit or len(rows) >= window


class _Leased(NamedTuple):
    """A claimed account's row, as `decrypted` reads it (the driver's rows have no names)."""

    credentials_key: str
    site: str
    login: str | None
    secret: bytes
    state: str
