"""A chat's quiet hours: "HH:MM-HH:MM" in its time zone, perhaps across midnight. Alerts
queued then come without a sound, except the kinds that must wake someone."""

from __future__ import annotations

import re
from datetime import datetime, time
from zoneinfo import ZoneInfo

# Kinds that ring even in quiet hours.
RINGING = frozenset({"critical", "escalation"})
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
