"""What the scheduled checks do at start, before the first look for due accounts, and again
when they see the clock step back."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, bindparam, func, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.storage.crypto import SecretBox, SecretKeyError
from bot.storage.models import Account, UTCDateTime
from bot.storage.stats import unleased

BATCH = 1000  # accounts read at a time
# The wall clock gone back by more than this against the monotonic one between two looks is a
# step (NTP setting right a clock that ran ahead), not the drift NTP slews away.
STEP = timedelta(seconds=5)


async def prepare_checks(
    sessionmaker: async_sessionmaker[AsyncSession],
    box: SecretBox,
    now: datetime,
    lease: timedelta,
    spread: Callable[[int], timedelta],
    longest: float,
) -> int:
    """Fill missing credential keys, and spread out the checks nobody made for a while (over
    `spread(check_interval)`), so that they do not all go at once; returns how many accounts
    were looked at. Checks set further ahead than `longest` intervals (the longest gap the bot
    sets) are brought back the same way: set by a clock that was ahead, since stepped back (a
    VM or an RTC kept in local time, then NTP), they would wait as long as the step, with no
    alert and a healthy /healthz, as nothing is due. The checks also run this when they see
    the clock step back (Checks.dispatch).

    Other processes may be running. Leased accounts are theirs and left alone, and so are
    accounts overdue by at most two leases: a running process leaves none later than that (a
    dead one's claims wait out a lease, then the next look takes them), so only later ones mean
    that nobody was checking. A replica that restarts while others run so leaves the checks due
    at that moment where they are, instead of pushing them minutes back.
    """
    table = Account.__table__
    dialect = sessionmaker.kw["bind"].dialect.name
    late = (
        Account.next_check_at.is_(None)
        | (Account.next_check_at < now - 2 * lease)
        | (_seconds_ahead(dialect, now) > Account.check_interval * longest)
    ) & unleased(now)
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


def _seconds_ahead(dialect: str, now: datetime) -> ColumnElement[float]:
    """How far an account's next check lies after `now`, in seconds, in SQL (which has no
    portable time arithmetic): SQLite keeps times as text, PostgreSQL as timestamps. Asked at
    start and after a step of the clock only: the claims of due checks stay an index probe."""
    at = type_coerce(now, UTCDateTime)
    if dialect == "sqlite":
        return (func.julianday(Account.next_check_at) - func.julianday(at)) * 86400
    return func.extract("epoch", Account.next_check_at - at)


class StepBack:
    """Tells the looks for due checks when the wall clock stepped back: measured against
    time.monotonic, which steps leave alone. The checks a wrong clock set too far ahead are
    then brought back once (prepare_checks), not looked for at each claim: the claims are the
    bot's hottest path, and this costs a look no query."""

    def __init__(self) -> None:
        self._last: tuple[datetime, float] | None = None
        self._unrepaired = False

    def stepped_back(self, now: datetime) -> bool:
        """Whether the clock stepped back since the last look, or since a step whose repair
        failed (the database away): the next look tries again."""
        ticks = time.monotonic()
        last, self._last = self._last, (now, ticks)
        if last is not None and now < last[0] + timedelta(seconds=ticks - last[1]) - STEP:
            self._unrepaired = True
        return self._unrepaired

    def repaired(self) -> None:
        self._unrepaired = False
