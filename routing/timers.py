"""The router's timers: relaxation steps, overflow, offer timeouts, wrap-up ends.

One heap of plain tuples ``(due, seq, kind, a, b, stamp)``. Nothing is ever
removed early: a timer whose subject changed meanwhile is recognised as stale
by the router's ``valid`` check (via ``stamp``) and skipped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator

RELAX, OVERFLOW, OFFER, WRAP = "relax", "overflow", "offer_timeout", "wrap_end"

Timer = tuple[float, int, str, str, str, float]  # due, seq, kind, subject a, subject b, stamp


class TimerQueue:
    """Timers in due order (ties: in the order they were set)."""

    def __init__(self) -> None:
        self._heap: list[Timer] = []
        self._seq = 0

    def __len__(self) -> int:
        return len(self._heap)

    def push(self, due: float, kind: str, a: str, b: str, stamp: float) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, kind, a, b, stamp))

    def next_due(self, valid: Callable[[Timer], bool]) -> float | None:
        """Due time of the first valid timer (stale ones in front are dropped)."""
        heap = self._heap
        while heap and not valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float, valid: Callable[[Timer], bool]) -> Iterator[Timer]:
        """Yield the valid timers due at or before ``now``, in order.

        Validity is checked as each one comes up, so a timer made stale by the
        handling of an earlier one is skipped, and timers set while handling
        (due by ``now``) are yielded too.
        """
        heap = self._heap
        while heap and heap[0][0] <= now:
            t = heapq.heappop(heap)
            if valid(t):
                yield t
