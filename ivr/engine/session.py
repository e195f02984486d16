"""A call's state between two webhooks: small, JSON-serialisable, immutable."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Status = Literal["active", "queued", "transferred", "ended"]
#: How many trail records a session keeps (older ones stay in the audit log).
TRAIL_LIMIT = 200
#: The last session each thread turned into JSON or read from it. A webhook reads its
#: call's session before the store's write lock and again under it, and writes the
#: session it decided before the lock and again under it: the second time is then a
#: string comparison, not a parse or a dump, inside the lock every worker waits for
#: (sessions are immutable: the engine copies ``data`` and builds a new ``trail``).
_LAST = threading.local()


class Session(BaseModel):
    """Where a call is in its flow and what the IVR has learned so far.

    ``turn`` counts the steps taken: the driver puts ``turn + 1`` in the URLs of the
    TwiML it returns, so a repeated webhook (same turn) is recognised and not
    applied twice.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    flow_id: str
    flow_version: str
    status: Status = "active"
    node: str | None = None
    attempts: int = 0
    question: int = 0
    turn: int = 0
    data: dict[str, Any] = {}
    started_at: dt.datetime
    updated_at: dt.datetime
    route: dict[str, Any] | None = None
    outcome: str | None = None
    trail: list[dict[str, Any]] = []

    def to_json(self) -> str:
        last = getattr(_LAST, "dumped", None)
        if last is not None and last[0] is self:
            return str(last[1])
        text = self.model_dump_json()
        _LAST.dumped = (self, text)
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> Session:
        """The session in ``text``; the very same object when this thread read the same
        text last (compare with ``is`` first)."""
        last = getattr(_LAST, "read", None)
        if last is not None and last[0] == text and type(last[1]) is cls:
            return last[1]  # type: ignore[no-any-return]
        session = cls.model_validate_json(text)
        _LAST.read = (text, session)
        return session

    def new_trail(self, before: Session | None) -> list[dict[str, Any]]:
        """Trail records added since ``before`` (all of them when ``before`` is None)."""
        if before is None:
            return list(self.trail)
        return [t for t in self.trail if t.get("turn", -1) > before.turn]
