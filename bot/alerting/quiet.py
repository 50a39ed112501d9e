"""A chat's quiet hours: "HH:MM-HH:MM" in its time zone, perhaps across midnight. Alerts
sent then come without a sound, except the kinds that must wake someone. Decided when an alert
is sent, not when it is queued: one queued at 21:59 and held up past 22:00 (a restart, retries,
a group's 20 messages a minute) rang in the night."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

# Kinds that ring even in quiet hours, when queued to ring at all: the end of a mute is queued
# to ring only when it is the critical alert the mute held back (bot.alerting.mutes).
RINGING = frozenset({"critical", "escalation", "unmuted"})
# ASCII digits only (int() takes others); a dash or the dashes phones put in its place.
_SPAN = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])\s*[-–—]\s*([01]?[0-9]|2[0-3]):([0-5][0-9])")


def parse(text: str) -> str:
    """The span as stored: "22:00 - 7:00" gives "22:00-07:00". ValueError for anything
    else, or a span that starts where it ends."""
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError("not HH:MM-HH:MM")
    start_hour, start_minute, end_hour, end_minute = match.groups()
    start, end = f"{int(start_hour):02d}:{start_minute}", f"{int(end_hour):02d}:{end_minute}"
    if start == end:
        raise ValueError("quiet hours must not start and end at the same time")
    return f"{start}-{end}"


def is_quiet(span: str | None, zone: str, now: datetime) -> bool:
    """Whether `now` falls in `span` (as `parse` writes it; None: no quiet hours) in `zone`."""
    if not span:
        return False
    start, end = (time.fromisoformat(part) for part in span.split("-"))
    local = now.astimezone(ZoneInfo(zone)).time()
    if start < end:
        return start <= local < end
    return local >= start or local < end  # across midnight


def silenced(kind: str, silent: bool, span: str | None, zone: str, now: datetime) -> bool:
    """Whether an alert of `kind`, queued `silent` or not, goes without a sound at `now` in a
    chat with quiet hours `span` in `zone`."""
    return silent or (kind not in RINGING and is_quiet(span, zone, now))
