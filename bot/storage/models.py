"""Database tables: chats, the SMSC accounts they watch, balance history, the outbox, daily
runs and /add hand-offs."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Money(TypeDecorator[Decimal]):
    """Decimal kept as exact text: SQLite has no decimal type and would round via float."""

    impl = String(40)
    cache_ok = True

    # One function a value each way, not TypeDecorator's wrapper around these methods: a
    # sweep converts seven Money values an account.
    def bind_processor(self, dialect: Dialect) -> Callable[[Decimal | None], str | None]:
        return _money_text

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[str | None], Decimal | None]:
        return _money_value

    # Still what SQLAlchemy uses where it writes a value into the SQL text (literal_binds).
    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> str | None:
        return _money_text(value)


def _money_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# Remembered, as the times below: most amounts a sweep reads are one of a few (none at all,
# the thresholds, a login's balance), and the cache's lookup is C where a call is Python's.
@functools.lru_cache(maxsize=1024)
def _money_value(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, whatever the database keeps.

    A value is converted by one function each way, not by TypeDecorator's wrapper around these
    methods around SQLAlchemy's own conversion: a sweep converts eleven datetimes an account.
    On SQLite (text) the text is SQLAlchemy's, "YYYY-MM-DD HH:MM:SS.ffffff", made by datetime's
    isoformat (SQLAlchemy's `%` formatting of a dict cost several times more), and read back by
    fromisoformat, as SQLAlchemy reads it. PostgreSQL keeps naive UTC timestamps, which asyncpg
    takes and gives as datetimes."""

    impl = DateTime()
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[datetime | None], Any] | None:
        return _sqlite_text if dialect.name == "sqlite" else _naive_utc

    def result_processor(
        self, dialect: Dialect, coltype: object
    ) -> Callable[[Any], datetime | None] | None:
        return _sqlite_value if dialect.name == "sqlite" else _aware_utc

    # Still what SQLAlchemy uses where it writes a value into the SQL text (literal_binds).
    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return _naive_utc(value)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime: times are stored in UTC and must carry a timezone")
    return value.astimezone(UTC)  # the value itself where it is in UTC, as the bot's own are


# Remembered: isoformat costs ≈ 1.3 µs, a hit ≈ 0.1, and most times a sweep writes are one of
# a few (a batch's accounts are all checked `now`). Equal times in other zones are the same
# UTC text, and a naive time raises, so is never remembered.
@functools.lru_cache(maxsize=1024)
def _sqlite_text(value: datetime | None) -> str | None:
    # Without its "+00:00": the text SQLAlchemy stores and compares.
    return None if value is None else _utc(value).isoformat(" ", "microseconds")[:-6]


# Remembered as the text on SQLite: `astimezone` and `replace` cost ≈ 1 µs each way, and the
# times a batch writes or reads are mostly a few (those of the batch's checks).
@functools.lru_cache(maxsize=1024)
def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value).replace(tzinfo=None)


@functools.lru_cache(maxsize=1024)
def _aware_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=1024)
def _sqlite_value(value: str | None) -> datetime | None:
    # Parsed with its zone: ≈ 0.25 µs, where parsing and then `replace(tzinfo=UTC)` took ≈ 1.2.
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def utcnow() -> datetime:
    return datetime.now(UTC)


class AccountState(enum.StrEnum):
    UNKNOWN = "unknown"  # not checked yet
    OK = "ok"
    LOW = "low"  # balance under the threshold
    CANT_CHECK = "cant_check"  # see Account.last_error


class Base(DeclarativeBase):
    pass


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(255))
    language: Mapped[str] = mapped_column(String(8), default="en")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # While an account stays low: first reminder after this many hours, then twice as long
    # each time; 0 turns reminders off.
    reminder_hours: Mapped[int] = mapped_column(Integer, default=6, server_default="6")
    # A low account counts as recovered only this many percent above its threshold, so a
    # balance hovering at the threshold does not flap between alert and recovery.
    hysteresis_percent: Mapped[Decimal] = mapped_column(
        Money, default=Decimal(2), server_default="2"
    )
    # IANA zone for the daily digest and dates shown; digest_time "HH:MM" there, or None.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    digest_time: Mapped[str | None] = mapped_column(String(5))
    # Forum topic /digest was set in: the digest goes there (None: General, or no forum).
    digest_thread_id: Mapped[int | None] = mapped_column(Integer)
    # The chat's local date of the last digest queued: a day's digest is queued once, by
    # whichever replica claims it (bot.alerting.digest).
    digest_sent_on: Mapped[str | None] = mapped_column(String(10))
    # "HH:MM-HH:MM" in the chat's zone: alerts then come silently, but critical ones.
    quiet_hours: Mapped[str | None] = mapped_column(String(11))
    # An alert nobody acknowledged within escalate_minutes brings one follow-up mentioning
    # escalate_to: a JSON list of @usernames, or ["admins"].
    escalate_minutes: Mapped[int | None] = mapped_column(Integer)
    escalate_to: Mapped[str | None] = mapped_column(Text)
    # A spend anomaly: the last 24 hours cost `anomaly_factor` times the daily average of
    # the week before, and at least `anomaly_minimum`; None turns the check off.
    anomaly_factor: Mapped[Decimal] = mapped_column(Money, default=Decimal(3), server_default="3")
    anomaly_minimum: Mapped[Decimal | None] = mapped_column(
        Money, default=Decimal(500), server_default="500"
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    accounts: Mapped[list[Account]] = relationship(
        back_populates="chat", cascade="all, delete-orphan", passive_deletes=True
    )


class Account(Base):
    """One SMSC account watched by one chat; the same login may be watched by several chats."""

    __tablename__ = "accounts"
    # An ID is never given to another account (SQLite reuses a removed row's otherwise): old
    # alerts' buttons carry it (see 0008).
    __table_args__ = (UniqueConstraint("chat_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE", onupdate="CASCADE"), index=True
    )
    # Forum topic the account was added in: replies and alerts go there.
    thread_id: Mapped[int | None] = mapped_column(Integer)
    # What the chat calls it: the login, or a label the chat chose for an API key.
    name: Mapped[str] = mapped_column(String(64))
    site: Mapped[str] = mapped_column(String(255))
    login: Mapped[str | None] = mapped_column(String(64))  # None: `secret` is an API key
    secret: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token
    threshold: Mapped[Decimal | None] = mapped_column(Money)
    check_interval: Mapped[int] = mapped_column(Integer)  # seconds
    state: Mapped[AccountState] = mapped_column(
        Enum(
            AccountState,
            native_enum=False,
            length=16,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AccountState.UNKNOWN,
    )
    last_balance: Mapped[Decimal | None] = mapped_column(Money)
    last_credit: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(8))
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(32))  # a CheckError value
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed checks
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A check under way: the process that claimed it holds it until then (see
    # bot.alerting.scheduling); after a crash another process takes it when this passes.
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Keyed hash of site, login and secret: accounts of several chats with the same
    # credentials are checked with one request. Keyed, so the database alone cannot be
    # used to guess passwords.
    credentials_key: Mapped[str | None] = mapped_column(String(64), index=True)
    last_sample_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # While LOW: since when, the lowest balance seen (to tell how much was topped up),
    # reminders so far and when the next is due, and a snooze that silences them.
    low_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lowest_balance: Mapped[Decimal | None] = mapped_column(Money)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Spend per day over the last week (top-ups left out), updated with each new sample; the
    # runway forecast is the balance over it. `runway_threshold` (days) alerts like `threshold`.
    spend_rate: Mapped[Decimal | None] = mapped_column(Money)
    runway_threshold: Mapped[int | None] = mapped_column(Integer)
    anomaly_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A second, lower level: under it the account is critical (its own alert, always rings).
    critical_threshold: Mapped[Decimal | None] = mapped_column(Money)
    critical_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The open incident: who took it ("I'm on it") and when, its one escalation, and the
    # notification of its alert (edited when the incident ends). No foreign key: the outbox
    # refers to accounts, not the other way round.
    acked_by: Mapped[str | None] = mapped_column(String(255))
    acked_by_id: Mapped[int | None] = mapped_column(BigInteger)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    alert_id: Mapped[int | None] = mapped_column(Integer)
    # No alerts until then (checks go on); the end is said once.
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    chat: Mapped[Chat] = relationship(back_populates="accounts")

    def __repr__(self) -> str:
        return f"Account(id={self.id!r}, chat_id={self.chat_id!r}, name={self.name!r})"


class BalanceSample(Base):
    __tablename__ = "balance_samples"
    # With the balance: a study of an account's history reads the index alone (see 0007).
    __table_args__ = (Index("ix_balance_samples_history", "account_id", "taken_at", "balance"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime)
    balance: Mapped[Decimal] = mapped_column(Money)
    credit: Mapped[Decimal] = mapped_column(Money)


class Notification(Base):
    """The outbox: a message to a chat, written in the transaction of the change that caused
    it and sent by the delivery worker, so that none is lost or sent twice."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_pending", "sent_at", "failure", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE", onupdate="CASCADE"), index=True
    )
    thread_id: Mapped[int | None] = mapped_column(Integer)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    reply_markup: Mapped[str | None] = mapped_column(Text)  # InlineKeyboardMarkup as JSON
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[int | None] = mapped_column(Integer)
    failure: Mapped[str | None] = mapped_column(String(64))  # why it was given up
    # A send under way: claimed by one process until then (see bot.alerting.outbox).
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set: this edits the message of that notification (an alert resolved or acknowledged)
    # instead of sending a new one; nothing to edit (never sent, too old) is no error.
    edit_of: Mapped[int | None] = mapped_column(Integer)


class DailyRun(Base):
    """A job that runs once a day for all processes together (history thinning): the one
    that moves `day` forward runs it."""

    __tablename__ = "daily_runs"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))  # ISO date of the last run (UTC)


class Handoff(Base):
    """A group's /add moved to a private chat: the deep link carries only `token`, a random
    reference to this row, which binds it to the user who asked, the group and its topic."""

    __tablename__ = "handoffs"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    chat_id: Mapped[int] = mapped_column(
        ForeignKey("chats.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    thread_id: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # links work once
