"""Running totals of a queue since the last statistics reset (the raw material of
``routing.stats``)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class QueueCounters:
    """Running totals of one queue since the last reset."""

    offered: int = 0
    answered: int = 0
    answered_in_sl: int = 0
    abandoned: int = 0
    overflowed: int = 0
    wait_sum: float = 0.0
    handle_times: deque[float] = field(default_factory=lambda: deque(maxlen=100))

    def as_dict(self) -> dict[str, Any]:
        d = {
            k: getattr(self, k)
            for k in (
                "offered",
                "answered",
                "answered_in_sl",
                "abandoned",
                "overflowed",
                "wait_sum",
            )
        }
        d["handle_times"] = list(self.handle_times)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QueueCounters:
        c = cls(**{k: v for k, v in d.items() if k != "handle_times"})
        c.handle_times.extend(d.get("handle_times", ()))
        return c
