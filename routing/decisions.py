"""The decision log behind ``Router.explain``: every decision of the active calls,
and of the last ``limit`` finished ones."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

from routing.errors import UnknownCallError
from routing.models import Decision


class DecisionLog:
    """Decisions per call id, oldest first; finished calls are forgotten oldest first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.seq = 0  # the last decision number handed out
        self._by_call: dict[str, list[Decision]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        #: Called with every decision as it is logged (the live layer stores them).
        self.listener: Callable[[Decision], None] | None = None

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def add(self, d: Decision) -> None:
        if self.listener is not None:
            self.listener(d)
        kept = self._by_call.get(d.call_id)
        if kept is None:
            self._by_call[d.call_id] = [d]
        else:
            kept.append(d)

    def reopen(self, call_id: str) -> None:
        """The call id is used again (a new leg): its history continues, kept while active."""
        self._finished.pop(call_id, None)

    def finish(self, call_id: str) -> None:
        """The call ended: keep its decisions among the last ``limit`` finished calls."""
        self._finished[call_id] = None
        while len(self._finished) > self.limit:
            old, _ = self._finished.popitem(last=False)
            self._by_call.pop(old, None)

    def ended(self, call_id: str) -> bool:
        return call_id in self._finished

    def explain(self, call_id: str) -> list[Decision]:
        try:
            return list(self._by_call[call_id])
        except KeyError:
            raise UnknownCallError(
                f"call {call_id}: no decisions recorded (unknown, or older than the last "
                f"{self.limit} finished calls)"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "history": {k: [d.as_dict() for d in v] for k, v in self._by_call.items()},
            "finished": list(self._finished),
        }

    def load(self, data: dict[str, Any]) -> None:
        self.seq = data["seq"]
        self._by_call = {k: [Decision.from_dict(d) for d in v] for k, v in data["history"].items()}
        self._finished = OrderedDict((k, None) for k in data["finished"])
