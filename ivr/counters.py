"""Counts of the things that must stay rare (safe paths taken, Twilio REST failures), per
process, shown by ``/healthz``. A plain counter for now; a metrics exporter can read them."""

from __future__ import annotations

import threading
from collections import Counter

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def count(name: str, n: int = 1) -> None:
    with _lock:
        _counts[name] += n


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(_counts)
