"""Instants in scenario inputs (replay logs, rosters, staffing tables, events) as seconds.

Three spellings are accepted: seconds from the start of the simulation (``3600``),
hours and minutes from the start (``"08:30"``, ``"32:00"`` for 08:00 the next day),
or an ISO 8601 timestamp measured from the scenario's origin (``start_at``, or the
midnight that starts the replayed log's first day).
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["Origin", "parse_instant"]

_HHMM = re.compile(r"^(\d{1,3}):([0-5]\d)(?::([0-5]\d(?:\.\d+)?))?$")


class Origin:
    """The wall-clock instant of simulated time 0; fixed by the first ISO timestamp if unset."""

    __slots__ = ("at",)

    def __init__(self, at: datetime | None = None) -> None:
        self.at = at

    def seconds(self, stamp: datetime) -> float:
        if self.at is None:
            self.at = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
        base = self.at
        if (stamp.tzinfo is None) != (base.tzinfo is None):  # naive = the other's zone
            stamp = stamp.replace(tzinfo=base.tzinfo)
        return (stamp - base).total_seconds()


def parse_instant(text: str | float | int, origin: Origin) -> float:
    """Seconds from time 0 of ``text``; raises ``ValueError`` naming the bad value."""
    if isinstance(text, int | float):
        return float(text)
    s = str(text).strip()
    try:
        return float(s)
    except ValueError:
        pass
    m = _HHMM.match(s)
    if m:
        return int(m.group(1)) * 3600.0 + int(m.group(2)) * 60.0 + float(m.group(3) or 0)
    try:
        stamp = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not seconds, HH:MM nor ISO 8601: {s!r}") from None
    return origin.seconds(stamp)
