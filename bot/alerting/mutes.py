"""The end of a mute, said once to the chat within a minute of it, whether or not the account
is checked then (its interval may be days; refused credentials stop its checks). An account
still low or unchecked then has its incident open from that notice, with the alert buttons;
one under its critical level hears it ring.

Run by the digests' minute job on every replica: a mute is cleared with a conditional UPDATE
in the transaction that queues its notice, so exactly one replica says it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.alerting.events import Renderer
from bot.alerting.queue import AlertQueue
from bot.storage.models import Account, AccountState, Chat

BATCH = 200  # mutes ended at once, said per minute; more wait for the next


class MuteEnds:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        renderer: Renderer,
        *,
        now: Callable[[], datetime],
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = AlertQueue(renderer, now)
        self._now = now

    async def tick(self) -> int:
        """Say the end of the mutes that ended; how many this process said."""
        async with self._sessionmaker() as session:
            ended = await session.execute(
                select(Account.id, Account.muted_until)
                .join(Chat, Chat.id == Account.chat_id)
                .where(Account.muted_until <= self._now(), Chat.active.is_(True))
                .limit(BATCH)
            )
            ended = ended.all()
        said = 0
        for account_id, until in ended:
            async with self._sessionmaker() as session:
                # The claim first: on SQLite it takes the write lock before anything is read.
                claimed = await session.execute(
                    update(Account)
                    .where(Account.id == account_id, Account.muted_until == until)
                    .values(muted_until=None)
                )
                if claimed.rowcount != 1:
                    continue  # another replica said it, or /mute changed it meanwhile
                account = await session.get_one(Account, account_id)
                chat = await session.get_one(Chat, account.chat_id)
                # An account in trouble gets the buttons of an alert: an incident that began
                # while muted has its alert in this notice (one to take, and to escalate).
                trouble = account.state in (AccountState.LOW, AccountState.CANT_CHECK)
                # A critical level crossed while muted was never rung, and no check rings it
                # now (the crossing is past): this notice is the critical alert, and rings as
                # one does, in quiet hours too. Anything else is said quietly.
                critical = account.critical_since is not None
                self._queue.add(
                    session,
                    chat,
                    account,
                    "unmuted",
                    silent=not critical,
                    buttons=trouble,
                )
                await self._queue.finish(session)
                await session.commit()
                said += 1
        return said
