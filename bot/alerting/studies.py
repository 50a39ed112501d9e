"""An account's history studied: its spend rate (for runways) and spending anomalies, worked
out from its last eight days of samples when a check takes a sample, once an hour at most.

A balance that moves is sampled at every check, and a study reads and tallies the whole week
(≈ 1 ms of CPU at a sample an hour, 3 at one every 15 minutes): a day's trend or anomaly is no
worse for an hour's delay. A balance at rest is sampled hourly, so each of its samples is
studied, as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.alerting import forecast
from bot.alerting.queue import AlertQueue, clear_incident
from bot.smsc.guard import BalanceResult
from bot.storage.history import Sample, histories_since
from bot.storage.models import Account, AccountState, Chat

# Samples read to work out the spend rate (a week) and anomalies (a day against the week
# before it).
HISTORY_STUDIED = timedelta(days=8)
# How often an account's history is studied at most, in hours of its own.
STUDY_EVERY = timedelta(hours=1)
# Accounts whose histories are read and studied together, a query each. A write's 500 at once
# held ≈ 20 MB of samples; 50 cost ≈ 10 µs of CPU an account more in a sweep, for 3 MB less.
STUDIED_AT_ONCE = 100


def study_due(account: Account, now: datetime) -> bool:
    """Whether a sample taken now is the account's first in an hour of its own (the hours
    offset by account, so that the accounts of a sweep take turns, not all at the hour's
    start)."""
    last = account.last_sample_at
    # A sample an hour or more ago is in another hour, whatever the offset: the usual case in a
    # sweep, settled without the slots' arithmetic (≈ 2 % of a sweep's CPU).
    if last is None or now - last >= STUDY_EVERY:
        return True
    offset = timedelta(minutes=account.id % 60)
    return _slot(now + offset) != _slot(last + offset)


async def study(
    session: AsyncSession,
    queue: AlertQueue,
    checked: Sequence[tuple[Account, BalanceResult]],
    chats: Mapping[int, Chat],
    now: datetime,
) -> None:
    """Study each account's history with the balance just checked: its spend rate, and an
    anomaly alert queued when its spending turns anomalous (one per episode)."""
    connection = await session.connection()
    for start in range(0, len(checked), STUDIED_AT_ONCE):
        part = checked[start : start + STUDIED_AT_ONCE]
        ids = [account.id for account, _result in part]
        histories = await histories_since(connection, ids, now - HISTORY_STUDIED)
        for account, result in part:
            samples = histories.get(account.id, [])
            samples.append(Sample(result.checked_at, result.balance.balance))
            _study_one(session, queue, chats[account.chat_id], account, samples, now)


def _study_one(
    session: AsyncSession,
    queue: AlertQueue,
    chat: Chat,
    account: Account,
    samples: list[Sample],
    now: datetime,
) -> None:
    found = forecast.study(samples, now, factor=chat.anomaly_factor, minimum=chat.anomaly_minimum)
    # A week with under three readings (the bot was down, or the account is checked every few
    # days) tells no rate. While the account is LOW the last rate known stays: an unknown rate
    # reads as no runway, and a runway incident would end with a false "recovered" (and open
    # again once the rate is back). Everything that reads the rate - the alerts' forecasts,
    # /history, the digest, the metrics - is then shown the last estimate rather than none,
    # and a top-up still ends the incident by that rate. Out of an incident an unknown rate
    # stays unknown, so the texts say there is too little history.
    if found.rate is not None or account.state != AccountState.LOW:
        account.spend_rate = found.rate
    if found.anomaly is None:
        if account.anomaly_since is not None and account.state == AccountState.OK:
            clear_incident(account)  # the anomaly's incident, if one was open, is over
        account.anomaly_since = None
    elif account.anomaly_since is None:  # one alert per episode
        account.anomaly_since = now
        queue.add(session, chat, account, "anomaly", buttons=True, amount=found.anomaly)


def _slot(moment: datetime) -> int:
    return (moment - forecast.EPOCH) // STUDY_EVERY
