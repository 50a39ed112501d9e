"""What the scheduled checks do at start, before the first look for due accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.crypto import SecretBox, SecretKeyError
from bot.storage.models import Account
from bot.storage.stats import unleased

BATCH = 1000  # accounts read at a time


async def prepare_checks(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    now: datetime,
    lease: timedelta,
    spread: Callable[[int], timedelta],
) -> int:
    """Fill missing credential keys, and spread out the checks nobody made for a while (over
    `spread(check_interval)`), so that they do not all go at once; returns how many accounts
    were looked at.

    Other processes may be running. Leased accounts are theirs and left alone, and so are
    accounts overdue by at most two leases: a running process leaves none later than that (a
    dead one's claims wait out a lease, then the next look takes them), so only later ones mean
    that nobody was checking. A replica that restarts while others run so leaves the checks due
    at that moment where they are, instead of pushing them minutes back.
    """
    table = Account.__table__
    late = (Account.next_check_at.is_(None) | (Account.next_check_at < now - 2 * lease)) & unleased(
        now
    )
    # Asked again as each account is moved: one claimed or checked by another process
    # meanwhile keeps what that process gave it, and one read only for its key stays.
    move = (
        update(table)
        .where(table.c.id == bindparam("account"), late)
        .values(next_check_at=bindparam("when"))
    )
    # The same key, whoever fills it.
    fill = (
        update(table)
        .where(table.c.id == bindparam("account"))
        .values(credentials_key=bindparam("key"))
    )
    columns = (table.c.id, table.c.credentials_key, table.c.site, table.c.login, table.c.secret)
    done, last_id = 0, 0
    while True:
        # A batch at a time, as plain rows: holding 10,000 accounts at once kept the process
        # that much bigger for nothing.
        async with sessionmaker() as session:
            connection = await session.connection()
            accounts = (
                await connection.execute(
                    select(*columns, table.c.check_interval)
                    .where(Account.credentials_key.is_(None) | late, table.c.id > last_id)
                    .order_by(table.c.id)
                    .limit(BATCH)
                )
            ).all()
            if not accounts:
                break
            keys = [
                {"account": id_, "key": _credentials_key(box, site, login, secret)}
                for id_, key, site, login, secret, _interval in accounts
                if key is None
            ]
            if keys:
                await connection.execute(fill, keys)
            moves = [
                {"account": row.id, "when": now + spread(row.check_interval)} for row in accounts
            ]
            await connection.execute(move, moves)
            await session.commit()
        done += len(accounts)
        last_id = accounts[-1].id
    return done


def _credentials_key(box: SecretBox, site: str, login: str | None, secret: bytes) -> str:
    """The key of the credentials; one of the stored bytes for a secret that does not decrypt
    (a row written by hand), so that its account is claimed, and fails its checks alone."""
    try:
        return box.keyed_hash(site, login, box.decrypt(secret))
    except SecretKeyError:
        return box.keyed_hash("undecryptable", site, login, secret.hex())
