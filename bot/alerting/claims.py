"""The outbox's rows under leases: which notifications may be sent now, claiming them, and
recording what became of them - so that of several processes on one database only one sends
a notification, and a chat's messages go out in order even when one of them dies mid-send.

A claim is a conditional UPDATE setting `lease_until`: of two replicas racing for a row one
gets it (PostgreSQL re-checks the WHERE of a row another transaction just changed; SQLite has
one writer). Recording an outcome ends the lease, and only while the lease is still the one
taken: if it ran out and another replica took the notification over, that one records.
Outcomes are written by `flush` right after they are recorded, and those recorded while one
write is under way (or waits for SQLite's turn) go together in the next: group commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from bot.alerting import quiet
from bot.storage import direct
from bot.storage.chats import deactivate, migrate_chat
from bot.storage.models import Chat, Notification

log = logging.getLogger(__name__)

UNSENT = (Notification.sent_at.is_(None), Notification.failure.is_(None))  # nor given up


def pending(now: datetime | ColumnElement[datetime]) -> list[ColumnElement[bool]]:
    """Unsent, not given up, due (`now` a time, or a parameter)."""
    return [*UNSENT, Notification.next_attempt_at <= now]


def unleased(now: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """Nobody is sending it: never claimed, or its claimer's lease ran out."""
    return or_(Notification.lease_until.is_(None), Notification.lease_until < now)


class Outgoing(NamedTuple):
    """A claimed notification, as the outbox sends it: plain values read by the claim, no ORM
    instance (one per notification cost more than the rest of the bookkeeping)."""

    id: int
    chat_id: int
    thread_id: int | None
    kind: str
    text: str
    reply_markup: str | None
    silent: bool  # without a sound: queued so, or claimed in the chat's quiet hours
    attempts: int
    lease_until: datetime | None  # the lease taken: what recording its outcome checks
    created_at: datetime  # queued then: retried until it is too old (bot.alerting.ledger)
    edit_of: int | None


OUTGOING = tuple(getattr(Notification, field) for field in Outgoing._fields)
# The chat's quiet hours and zone, returned with each claimed notification: whether it rings is
# decided as it goes out (bot.alerting.quiet).
_QUIET = tuple(
    select(column).where(Chat.id == Notification.chat_id).scalar_subquery()
    for column in (Chat.quiet_hours, Chat.timezone)
)


class Claims:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        lease_seconds: float,
        writes: AbstractAsyncContextManager[Any] | None,
    ) -> None:
        """`writes`: the turn SQLite's writers take (see bot.alerting.outbox.Outbox); None
        means none."""
        self._sessionmaker = sessionmaker
        # The hot paths run plain statements on a connection: no Session, no unit of work.
        self._engine: AsyncEngine = sessionmaker.kw["bind"]
        self.lease = timedelta(seconds=lease_seconds)
        self._writes: AbstractAsyncContextManager[Any] = writes or contextlib.nullcontext()
        self._outcomes: list[tuple[Outgoing, dict[str, object]]] = []  # not yet written
        self._flushing = asyncio.Lock()
        self._held: direct.Direct | None = None  # while `held`, on SQLite

    async def candidates(self, now: datetime, limit: int) -> list[tuple[int, int]]:
        """(id, chat_id) of each chat's oldest unsent notification if it is due and nobody
        is sending it, oldest first. The chat's later ones wait for it: while it is leased
        (sent elsewhere, or by a replica that died) and while it waits to be retried (after
        a 429 or a 5xx), so they never overtake it."""
        values = {"now": now, "limit": limit}
        if self._held is not None:
            rows = await self._held.rows(_candidates(), values)
        else:
            async with self._engine.connect() as connection:
                rows = list(await connection.execute(_candidates(), values))
        return [(id_, chat_id) for id_, chat_id in rows]

    async def claim(self, ids: list[int], now: datetime) -> list[Outgoing]:
        """Lease those of `ids` still pending and unleased, in id order. SKIP LOCKED (on
        PostgreSQL) passes over rows a check is marking stale right now, instead of waiting
        for its transaction."""
        conditions = [*pending(now), unleased(now)]
        claimable = (
            select(Notification.id)
            .where(Notification.id.in_(ids), *conditions)
            .with_for_update(skip_locked=True)
        )
        async with self._writes, self._engine.begin() as connection:
            claimed = await connection.execute(
                update(Notification)
                .where(Notification.id.in_(claimable), *conditions)
                .values(lease_until=now + self.lease)
                .returning(*OUTGOING, *_QUIET)
            )
            return sorted((_outgoing(row, now) for row in claimed), key=lambda n: n.id)

    def record(self, notification: Outgoing, **values: object) -> None:
        """What became of one notification, written with the next `flush`, which also ends its
        lease if the lease is still the one taken; with no `values`, the claim is just given
        back."""
        self._outcomes.append((notification, values))

    async def flush(self) -> None:
        """Write the outcomes recorded so far, in one transaction, after the write under way
        (which may have taken them already). If it fails they stay for the next flush (the
        outbox's next pass begins with one), and the error is raised."""
        async with self._flushing:
            batch, self._outcomes = self._outcomes, []
            if not batch:
                return
            try:
                async with self._writes:
                    if self._held is not None:
                        lost = await _marked(self._held, batch)
                    else:
                        async with self._engine.begin() as connection:
                            lost = await _write(connection, batch)
            except BaseException:
                self._outcomes[:0] = batch
                raise
        if lost:
            ids = sorted(notification.id for notification in lost)
            log.warning("notification lease lost in ids=%s: taken over elsewhere", ids)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """While in it, on SQLite, outcomes are written and candidates read by the driver
        itself on a connection held for the purpose (bot.storage.direct): one outcome flushed
        alone (the usual: one per answer from Telegram) is one statement that is its own
        transaction, committed as durably as a COMMIT, in one trip to aiosqlite's thread.
        Through a pooled connection it took six, more CPU than the rest of a send, and an idle
        outbox's look for work each second took 0.3 % of a core. Elsewhere nothing changes.
        Within it, `held` again holds nothing more (the outbox's loop holds it for its life,
        and a pass holds it too when run alone)."""
        if self._held is not None:
            yield
            return
        async with direct.held(self._engine) as held:
            self._held = held
            try:
                yield
            finally:
                self._held = None

    async def message_of(self, notification: Outgoing) -> int | None:
        """The Telegram message an edit is for: that of the notification it edits, if it was
        sent to the same chat; None if there is nothing to edit."""
        async with self._engine.connect() as connection:
            return await connection.scalar(
                select(Notification.message_id).where(
                    Notification.id == notification.edit_of,
                    Notification.chat_id == notification.chat_id,
                    Notification.sent_at.is_not(None),
                )
            )

    async def release_all(self) -> None:
        """Every claim ended: for the only process sending, whose earlier run left them."""
        async with self._writes, self._engine.begin() as connection:
            await connection.execute(
                update(Notification)
                .where(Notification.lease_until.is_not(None))
                .values(lease_until=None)
            )

    async def migrate(self, notification: Outgoing, new_id: int) -> None:
        """The group became a supergroup: its notifications (this one too) follow it."""
        async with self._writes, self._sessionmaker() as session:
            await migrate_chat(session, notification.chat_id, new_id)
        self.record(notification)

    async def chat_gone(self, chat_id: int) -> None:
        """The bot was blocked or removed: nothing more goes to the chat."""
        async with self._writes, self._sessionmaker() as session:
            await session.execute(
                update(Notification)
                .where(
                    Notification.chat_id == chat_id,
                    Notification.sent_at.is_(None),
                    Notification.failure.is_(None),
                )
                .values(failure="chat unavailable", lease_until=None)
            )
            await deactivate(session, chat_id)


async def _write(
    connection: AsyncConnection, batch: list[tuple[Outgoing, dict[str, object]]]
) -> list[Outgoing]:
    """Each outcome written and its lease ended, if the lease is still the one taken; returns
    those of the outcomes among which a lease was lost. Outcomes setting the same columns go
    in one executemany where the driver counts the rows of all (SQLite: which ones it cannot
    tell, so the group's), else one statement each (asyncpg)."""
    groups: dict[tuple[str, ...], list[tuple[Outgoing, dict[str, object]]]] = {}
    for notification, values in batch:
        groups.setdefault(tuple(sorted(values)), []).append((notification, values))
    each = not connection.dialect.supports_sane_multi_rowcount
    lost = []
    for columns, group in groups.items():
        statement = _ended(columns)
        params = [_params(notification, values) for notification, values in group]
        if each:
            for (notification, _), one in zip(group, params, strict=True):
                if (await connection.execute(statement, one)).rowcount == 0:
                    lost.append(notification)
        elif (await connection.execute(statement, params)).rowcount < len(group):
            lost += [notification for notification, _ in group]
    return lost


async def _marked(
    held: direct.Direct, batch: list[tuple[Outgoing, dict[str, object]]]
) -> list[Outgoing]:
    """Outcomes written through a held connection (bot.storage.direct): one alone as its own
    transaction, several in one; returns those whose lease was lost."""

    async def one(notification: Outgoing, values: dict[str, object]) -> bool:
        statement = _ended(tuple(sorted(values)))
        return await held.rowcount(statement, _params(notification, values)) > 0

    if len(batch) == 1:
        return [] if await one(*batch[0]) else [batch[0][0]]
    try:
        await held.begin()
        lost = [
            notification for notification, values in batch if not await one(notification, values)
        ]
        await held.commit()
    except BaseException:
        await held.rollback()
        raise
    return lost


def _outgoing(row: Any, now: datetime) -> Outgoing:
    """A claimed notification, silent if the chat's quiet hours say so `now`."""
    *values, span, zone = row
    notification = Outgoing(*values)
    silent = quiet.silenced(notification.kind, notification.silent, span, zone, now)
    return notification._replace(silent=silent)


def _params(notification: Outgoing, values: dict[str, object]) -> dict[str, object]:
    """The parameters of `_ended` for one outcome."""
    return {
        "n_id": notification.id,
        "n_lease": notification.lease_until,
        **{f"n_{c}": value for c, value in values.items()},
    }


@functools.cache
def _candidates() -> Select:
    """See Claims.candidates: `now` and `limit` are parameters. Built once: building it cost
    more than running it."""
    now = bindparam("now")
    oldest = select(func.min(Notification.id)).where(*UNSENT).group_by(Notification.chat_id)
    return (
        select(Notification.id, Notification.chat_id)
        .where(Notification.id.in_(oldest), *pending(now), unleased(now))
        .order_by(Notification.id)
        .limit(bindparam("limit"))
    )


@functools.cache
def _ended(columns: tuple[str, ...]) -> Update:
    """The outcome (values for `columns`) written and the lease ended, if the lease is still
    the one taken. Built once per set of columns: building it cost more than running it."""
    return (
        update(Notification)
        .where(
            Notification.id == bindparam("n_id"),
            Notification.lease_until == bindparam("n_lease"),
        )
        .values(lease_until=None, **{c: bindparam(f"n_{c}") for c in columns})
    )
