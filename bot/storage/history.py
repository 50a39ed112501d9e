"""Balance history: reading it for forecasts and charts, and keeping it small."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.storage import direct
from bot.storage.models import Account, BalanceSample, UTCDateTime
from bot.storage.runs import claim_day

log = logging.getLogger(__name__)


class Sample(NamedTuple):
    """One reading of an account's balance, as forecasts and charts take it. A tuple, not a
    frozen dataclass (half as dear again to make): a check that takes a sample reads the
    account's week of them, up to hundreds."""

    taken_at: datetime  # UTC-aware
    balance: Decimal


async def samples_since(session: AsyncSession, account_id: int, since: datetime) -> list[Sample]:
    return (await histories_since(session, [account_id], since)).get(account_id, [])


async def histories_since(
    session: AsyncSession | AsyncConnection, account_ids: Collection[int], since: datetime
) -> dict[int, list[Sample]]:
    """Samples of many accounts in one query (the checks study a hundred accounts' at a time),
    oldest first; an account without samples is missing from the answer. On a connection,
    the query skips the ORM's bookkeeping (the scheduled checks), and on SQLite it is one trip
    to aiosqlite's thread, where SQLAlchemy's cursor took four (bot.storage.direct): a sweep
    studies every account it samples, and a tenth of its trips were these reads."""
    held = await direct.on(session) if isinstance(session, AsyncConnection) else None
    if held is not None:
        values = {"ids": list(account_ids), "since": since}
        rows = await held.records(_HISTORIES_LISTED, values)
    else:
        rows = await session.execute(_HISTORIES, {"ids": account_ids, "since": since})
    return _by_account(rows)


async def histories_across(
    session: AsyncSession, account_ids: Collection[int], since: datetime
) -> dict[int, list[Sample]]:
    """As histories_since, with each account's last sample before `since` too: the move
    from it into the span is there to share by time (an account checked daily has no other
    sample in a day). One query: each account's sample before is found from the index."""
    rows = await session.execute(_HISTORIES_ACROSS, {"ids": account_ids, "since": since})
    return _by_account(rows)


def _by_account(rows: Iterable[tuple[int, datetime, Decimal]]) -> dict[int, list[Sample]]:
    histories: dict[int, list[Sample]] = {}
    for account_id, taken_at, balance in rows:
        histories.setdefault(account_id, []).append(Sample(taken_at, balance))
    return histories


def _histories(ids: ColumnElement[bool]) -> Select[tuple[int, datetime, Decimal]]:
    return (
        select(BalanceSample.account_id, BalanceSample.taken_at, BalanceSample.balance)
        .where(ids, BalanceSample.taken_at >= bindparam("since"))
        .order_by(BalanceSample.account_id, BalanceSample.taken_at)
    )


# Built once, with parameters: building it for each query cost more than running it (the
# checks read histories a hundred accounts at a time).
_HISTORIES = _histories(BalanceSample.account_id.in_(bindparam("ids", expanding=True)))
# The same on SQLite, run by the driver itself (bot.storage.direct.listed).
_HISTORIES_LISTED = _histories(BalanceSample.account_id.in_(direct.listed("ids")))
_SINCE = bindparam("since", type_=UTCDateTime())
_BEFORE = aliased(BalanceSample)
# Account by account (its id from the list), the samples from its last before `since`, or
# from `since` if it has none: the one before is one step back in the index. (SQLite reads
# every earlier sample for a max() in a correlated subquery: 1.7 s for 100 accounts of 90
# days of samples, where this takes 30 ms, as long as reading their day alone.)
_HISTORIES_ACROSS = (
    select(BalanceSample.account_id, BalanceSample.taken_at, BalanceSample.balance)
    .select_from(Account)
    .join(
        BalanceSample,
        and_(
            BalanceSample.account_id == Account.id,
            BalanceSample.taken_at
            >= func.coalesce(
                select(_BEFORE.taken_at)
                .where(_BEFORE.account_id == Account.id, _BEFORE.taken_at < _SINCE)
                .order_by(_BEFORE.taken_at.desc())
                .limit(1)
                .scalar_subquery(),
                _SINCE,
            ),
        ),
    )
    .where(Account.id.in_(bindparam("ids", expanding=True)))
    .order_by(BalanceSample.account_id, BalanceSample.taken_at)
)


# Accounts whose old samples are thinned by one statement, committed: one DELETE of a whole
# fleet's (3 million samples at 5,000 accounts and 300 days) ran past PostgreSQL's statement
# bound (bot.storage.engine.STATEMENT_TIMEOUT), every night, and held SQLite's one writer as
# long. A batch's samples are read from the index by account.
THIN_BATCH = 50
# Of a batch's samples before the cutoff, all but each day's last: built once, for any batch.
_RANKED = (
    select(
        BalanceSample.id,
        func.row_number()
        .over(
            partition_by=(BalanceSample.account_id, func.date(BalanceSample.taken_at)),
            order_by=BalanceSample.id.desc(),
        )
        .label("rank"),
    )
    .where(
        BalanceSample.account_id.in_(bindparam("ids", expanding=True)),
        BalanceSample.taken_at < bindparam("cutoff", type_=UTCDateTime()),
    )
    .subquery()
)
_THIN = delete(BalanceSample).where(
    BalanceSample.id.in_(select(_RANKED.c.id).where(_RANKED.c.rank > 1))
)


async def thin(session: AsyncSession, now: datetime, raw_days: int) -> int:
    """Keep every sample of the last `raw_days`, and one a day before that (the day's last);
    returns how many were deleted, committed batch by batch. Growth per account is then
    bounded (see the README)."""
    cutoff = now - timedelta(days=raw_days)
    ids = (await session.scalars(select(Account.id).order_by(Account.id))).all()
    deleted = 0
    for start in range(0, len(ids), THIN_BATCH):
        batch = ids[start : start + THIN_BATCH]
        result = await session.execute(_THIN, {"ids": batch, "cutoff": cutoff})
        await session.commit()
        deleted += result.rowcount
    return deleted


async def thin_all(
    sessionmaker: async_sessionmaker[AsyncSession],
    raw_days: int,
    *,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int | None:
    """The nightly job, scheduled by every replica and run by the one that claims the day;
    returns how many samples it deleted, None where another process thinned today."""
    at = now()
    async with sessionmaker() as session:
        if not await claim_day(session, "thin-history", at.date().isoformat()):
            log.info("history thinning: done today by another process")
            return None
        deleted = await thin(session, at, raw_days)
    log.info("history thinned deleted=%s", deleted)
    return deleted
