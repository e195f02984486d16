"""What happens to a call once an agent has it, as the router does not record it:
holds, transfers (who, why, the original intent) and the wrap-up's disposition; and, in a
table of their own, what Twilio reports of the call's conference room when agents are
bridged by conference (:mod:`ivr.live.conference`).

One append-only table of small events (``floor_events``) in the store (SQLite's file, or
PostgreSQL through :class:`ivr.live.postgres.PostgresConnect`), or a list in memory; the
report (``ivr.report``) reads it with the sessions and the routing decisions.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Protocol

from ivr.errors import IVRError

KINDS = ("hold", "resume", "transfer", "consult", "consult_end", "disposition")
#: The table of the conference rooms' status callbacks (kind ``conference``): the same
#: shape, apart so that Twilio's callbacks do not wake every agent page as a hold does.
ROOM_TABLE = "room_events"
DISPOSITIONS = ("resolved", "not_resolved", "follow_up")
MAX_NOTES = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS floor_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id  TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at       REAL NOT NULL,
    kind     TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS floor_events_by_call ON floor_events (call_id, id);
CREATE INDEX IF NOT EXISTS floor_events_by_time ON floor_events (at);
"""


class FloorError(IVRError):
    """A floor event is not valid; the message names the field."""


@dataclass(frozen=True)
class FloorEvent:
    call_id: str
    agent_id: str
    at: float
    kind: str
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FloorLog(Protocol):
    def add(self, event: FloorEvent) -> None: ...

    def events(self, call_id: str | None = None, since: float | None = None,
               until: float | None = None) -> list[FloorEvent]:
        """Events of one call, or of a time range, oldest first."""
        ...

    def last_id(self) -> int:
        """A number that grows with every event added (by any process)."""
        ...


class SqlFloorLog:
    def __init__(self, connect: Callable[[], Any], table: str = "floor_events") -> None:
        """``connect()``: this thread's connection, autocommit, ``?`` placeholders;
        ``table``: ``floor_events`` or :data:`ROOM_TABLE`."""
        assert table in ("floor_events", ROOM_TABLE)
        self._connect = connect
        self._table = table
        connect().executescript(SCHEMA.replace("floor_events", table))

    def add(self, event: FloorEvent) -> None:
        self._connect().execute(
            f"INSERT INTO {self._table} (call_id, agent_id, at, kind, data) "
            "VALUES (?,?,?,?,?)",
            (event.call_id, event.agent_id, event.at, event.kind, json.dumps(event.data)))

    def events(self, call_id: str | None = None, since: float | None = None,
               until: float | None = None) -> list[FloorEvent]:
        where, args = _where(call_id, since, until)
        rows = self._connect().execute(
            f"SELECT call_id, agent_id, at, kind, data FROM {self._table}{where} ORDER BY id",
            args).fetchall()
        return [FloorEvent(r[0], r[1], float(r[2]), r[3], json.loads(r[4])) for r in rows]

    def last_id(self) -> int:
        row = self._connect().execute(
            f"SELECT COALESCE(MAX(id), 0) FROM {self._table}").fetchone()
        return int(row[0])


def _where(call_id: str | None, since: float | None, until: float | None
           ) -> tuple[str, list[Any]]:
    terms, args = [], []
    for term, value in (("call_id = ?", call_id), ("at >= ?", since), ("at < ?", until)):
        if value is not None:
            terms.append(term)
            args.append(value)
    return (" WHERE " + " AND ".join(terms)) if terms else "", args


class MemoryFloorLog:
    def __init__(self) -> None:
        self._events: list[FloorEvent] = []
        self._lock = threading.Lock()

    def add(self, event: FloorEvent) -> None:
        with self._lock:
            self._events.append(event)

    def last_id(self) -> int:
        return len(self._events)

    def events(self, call_id: str | None = None, since: float | None = None,
               until: float | None = None) -> list[FloorEvent]:
        return [e for e in list(self._events)
                if (call_id is None or e.call_id == call_id)
                and (since is None or e.at >= since) and (until is None or e.at < until)]


def on_hold(events: list[FloorEvent], agent_id: str | None = None) -> bool:
    """True when the call's last hold has not been resumed (by this agent, if given)."""
    state = False
    for e in events:
        if agent_id is not None and e.agent_id != agent_id:
            continue
        if e.kind == "hold":
            state = True
        elif e.kind in ("resume", "transfer", "disposition"):
            state = False
    return state


def pending_consult(events: list[FloorEvent]) -> FloorEvent | None:
    """The warm-transfer consult of a call still waiting for its target's answer."""
    pending = None
    for e in events:
        if e.kind == "consult":
            pending = e
        elif e.kind in ("consult_end", "transfer", "disposition"):
            pending = None
    return pending
