"""Alerts into the outbox: worded when queued, in the chat's language then, by the renderer the
wiring hands in; and an incident that ended before its first notification went out told as
one message, not as a stale alert followed by its ending."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting.claims import UNSENT, unleased
from bot.alerting.events import AlertEvent, Renderer
from bot.storage.models import Account, Chat, Notification

# An incident's ending notification, and the ones of its beginning that are stale if still
# unsent when it ends (an outage kept them in the outbox).
ENDINGS = {"working": ("cant_check",), "recovered": ("low", "reminder", "critical")}
# Alerts that open an incident: the account remembers the notification (Account.alert_id),
# edited when someone takes the incident and when it ends. Any other alert with buttons (an
# anomaly, a reminder, the end of a mute) opens one only when none is open, so that its
# "I'm on it" has an incident to take: a low that came while muted had no alert.
OPENINGS = ("low", "critical", "cant_check")
OPENED, EDITS = "alerting.opened", "alerting.edits"  # session.info keys: what `finish` does
QUEUED = "alerting.queued"  # session.info: the alerts queued (flushed early by `finish`)


class AlertQueue:
    def __init__(self, renderer: Renderer, now: Callable[[], datetime]) -> None:
        self._renderer = renderer
        self._now = now

    def add(
        self,
        session: AsyncSession,
        chat: Chat,
        account: Account,
        kind: str,
        *,
        silent: bool = False,
        buttons: bool = False,
        amount: Decimal | None = None,
    ) -> None:
        # A muted account's state still changes; the chat is not told (bot.alerting.mutes
        # says when the mute ends). `silent`: never with a sound; the chat's quiet hours are
        # for the outbox to apply when it sends (bot.alerting.quiet).
        if account.muted_until is not None and self._now() < account.muted_until:
            return
        rendered = self._renderer.alert(
            self._event(chat, account, kind, amount=amount), buttons=buttons
        )
        notification = Notification(
            chat_id=account.chat_id,
            thread_id=account.thread_id,
            account_id=account.id,
            kind=kind,
            text=rendered.text,
            reply_markup=rendered.reply_markup,
            silent=silent,
            created_at=self._now(),
            next_attempt_at=self._now(),
        )
        session.add(notification)
        session.info.setdefault(QUEUED, []).append(notification)
        if kind in OPENINGS or (buttons and account.alert_id is None):
            clear_incident(account)  # a new incident: nobody has it yet
            session.info.setdefault(OPENED, []).append((account, notification))

    def edit(
        self,
        session: AsyncSession,
        chat: Chat,
        account: Account,
        kind: str,
        target_id: int,
        *,
        keep_buttons: bool = False,
    ) -> None:
        """An edit of notification `target_id`'s message: its text with a note of `kind`
        ("acked", "resolved") below, worded now; queued by `finish`."""
        note = self._renderer.alert(self._event(chat, account, kind)).text
        session.info.setdefault(EDITS, []).append((account, kind, target_id, note, keep_buttons))

    async def finish(self, session: AsyncSession) -> None:
        """Queue the edits asked for, and remember the alerts that opened incidents (their ids
        come with a flush, so after `drop_stale`, which looks at the session's new rows)."""
        edits, opened = session.info.pop(EDITS, []), session.info.pop(OPENED, [])
        if edits:
            with session.no_autoflush:
                targets = {
                    n.id: n
                    for n in await session.scalars(
                        select(Notification).where(Notification.id.in_({e[2] for e in edits}))
                    )
                }
            for account, kind, target_id, note, keep_buttons in edits:
                target = targets.get(target_id)
                if target is None or target.failure is not None:
                    continue  # never sent: nothing to edit
                session.add(
                    Notification(
                        chat_id=target.chat_id,
                        thread_id=target.thread_id,
                        account_id=account.id,
                        kind=kind,
                        text=f"{target.text}\n\n{note}",
                        reply_markup=target.reply_markup if keep_buttons else None,
                        silent=True,
                        created_at=self._now(),
                        next_attempt_at=self._now(),
                        edit_of=target.id,
                    )
                )
        if opened:
            await session.flush()
            for account, notification in opened:
                if notification.id is not None:
                    account.alert_id = notification.id

    async def drop_stale(
        self, session: AsyncSession, accounts: dict[int, Account], chats: dict[int, Chat]
    ) -> None:
        """An incident that ends before its first notification went out is not told stale:
        "can't check" and "works again" are both dropped; "low" (and its reminders) and
        "recovered" become one message saying both, with times.

        A notification leased by the outbox (here or in another replica) is being sent right
        now: it still reaches the chat, and the ending follows it as usual. Its row is read
        FOR UPDATE, so a claim cannot slip in between this read and the commit on PostgreSQL
        (the outbox skips the locked rows until then); on SQLite, checks and the outbox take
        turns to write."""
        endings = [n for n in session.new if isinstance(n, Notification) and n.kind in ENDINGS]
        if not endings:
            return
        with session.no_autoflush:
            unsent = await session.scalars(
                select(Notification)
                .where(
                    Notification.account_id.in_({n.account_id for n in endings}),
                    Notification.kind.in_([kind for kinds in ENDINGS.values() for kind in kinds]),
                    Notification.sent_at.is_(None),
                    Notification.failure.is_(None),
                )
                .with_for_update()
                .execution_options(populate_existing=True)
            )
            openings: defaultdict[int, list[Notification]] = defaultdict(list)
            under_way: set[int] = set()  # accounts with an opening leased for sending
            now = self._now()
            for notification in unsent:
                if notification.lease_until is not None and notification.lease_until >= now:
                    under_way.add(notification.account_id)
                else:
                    openings[notification.account_id].append(notification)
        for ending in endings:
            stale = [n for n in openings[ending.account_id] if n.kind in ENDINGS[ending.kind]]
            if not stale:
                continue
            for notification in stale:
                notification.failure = "stale"
            if ending.kind == "working" and ending.account_id not in under_way:
                session.expunge(ending)
                continue
            low = [n for n in stale if n.kind in ("low", "critical")]
            if low:
                account, chat = accounts[ending.account_id], chats[ending.chat_id]
                # "critical_over" when it went under the critical level too
                over = "critical_over" if any(n.kind == "critical" for n in low) else "low_over"
                head = self._renderer.alert(
                    self._event(chat, account, over, since=min(n.created_at for n in low))
                ).text
                ending.text = f"{head}\n{ending.text}"
                ending.silent = False  # the chat never heard of the low: it rings as one

    def _event(
        self,
        chat: Chat,
        account: Account,
        kind: str,
        *,
        amount: Decimal | None = None,
        since: datetime | None = None,
    ) -> AlertEvent:
        return AlertEvent(
            kind, account, self._now(), chat.timezone, chat.language, amount=amount, since=since
        )


async def withdraw(session: AsyncSession, account_id: int, now: datetime) -> None:
    """The account is being removed: its messages not sent yet never will be, in the caller's
    transaction (a chat is not told of, nor given buttons for, an account it no longer has).
    Edits of its alerts sent before still go: they change a message the chat has already, and
    a "resolved" one takes its buttons away.

    One leased by the outbox is being sent right now: it may still go. On PostgreSQL this
    UPDATE waits for a claim under way and re-checks the lease after it; a claim skips the
    rows it has locked (SKIP LOCKED) and finds them given up after the commit. On SQLite,
    writers take turns."""
    await session.execute(
        update(Notification)
        .where(
            Notification.account_id == account_id,
            Notification.edit_of.is_(None),
            *UNSENT,
            unleased(now),
        )
        .values(failure="account removed")
        .execution_options(synchronize_session=False)
    )


def clear_incident(account: Account) -> None:
    """Nobody has the account's incident, it was not escalated, and it has no alert."""
    account.acked_by = account.acked_by_id = account.acked_at = None
    account.escalated_at = None
    account.alert_id = None
