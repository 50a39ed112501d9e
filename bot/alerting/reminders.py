"""The reminders' schedule while a balance stays low: the first the chat's /remind hours after
the alert, then twice as long after each reminder, but at least weekly."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.storage.models import Account

LONGEST_GAP = timedelta(days=7)
# More doublings than this make any gap (of an hour at least) longer than the longest: counted
# on, after half a year of reminders they overflowed timedelta and failed every check.
_MOST_DOUBLINGS = (LONGEST_GAP // timedelta(hours=1)).bit_length()


def gap(hours: int, sent: int) -> timedelta:
    """The wait for the next reminder after `sent` of them (none: the wait after the alert)."""
    return min(timedelta(hours=hours) * 2 ** min(sent, _MOST_DOUBLINGS), LONGEST_GAP)


def rescheduled(account: Account, old_hours: int, hours: int, now: datetime) -> datetime:
    """When the reminder due next comes once /remind changed from `old_hours` (0: off) to
    `hours`: the new gap from the alert or reminder the old one counted from, so a shorter
    setting brings it sooner (at the next check, if that moment is past) and a longer later."""
    due = account.next_reminder_at
    if due is not None and old_hours:
        # The moment the old gap was counted from; a critical alert since may have put the
        # reminder off (Monitor._set_critical), then this is earlier than that alert.
        since = due - gap(old_hours, account.reminders_sent)
    else:
        # Reminders were off, none was due: from when the account went low, or from now for
        # one low since a time not kept (a database of the bot's first version).
        since = account.low_since or now
    new_due = since + gap(hours, account.reminders_sent)
    if account.critical_since is not None:
        # As after a critical alert: no sooner than the first gap after it.
        new_due = max(new_due, account.critical_since + timedelta(hours=hours))
    return new_due
