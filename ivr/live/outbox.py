"""The REST outbox: what the router's decisions ask of Twilio's REST API (move a caller to
the agent reserved for them, ring a caller back), recorded in the same store transaction as
the routing change and sent later by a background sender, never inside a webhook.

Each intent has an idempotency key (call, agent, decision number): recording the same
decision twice keeps one row, and a row is claimed by one sender at a time, so Twilio is
asked once per decision. A send has a short timeout and a few tries with backoff; after
the last failed try the sender hands the intent back to the router
(:meth:`ivr.live.routing.LiveRouting.telephony_failed`), which returns the call to the
head of its queue without penalising the agent.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ivr.live.sqlite_lock import immediate

log = logging.getLogger("ivr.outbox")
#: Tries per intent before it is handed back to the router.
MAX_TRIES = 3
#: Wait before the 2nd, 3rd... try, in seconds.
BACKOFF_S = (0.5, 1.5, 3.0)
#: A claim older than this (a sender died mid-send) may be taken again.
CLAIM_TTL_S = 30.0
#: Finished intents (sent or given up) are kept this long for inquiries, then pruned.
KEEP_S = 24 * 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    key        TEXT PRIMARY KEY,  -- idempotency key: kind:call:agent:decision
    kind       TEXT NOT NULL,     -- connect | ring | hold | consult | ... (ivr.live.routing)
    call_id    TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    target     TEXT NOT NULL,     -- ring: 'to from' numbers; connect: ''
    state      TEXT NOT NULL,     -- pending | sending | sent | failed
    tries      INTEGER NOT NULL DEFAULT 0,
    due_at     REAL NOT NULL,
    claimed_at REAL,
    error      TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, due_at);
CREATE INDEX IF NOT EXISTS outbox_by_call ON outbox (call_id, agent_id);
"""


@dataclass(frozen=True)
class Intent:
    """One request to Twilio's REST API the router's decision needs."""

    key: str
    kind: str  # "connect", "ring", or a conference change (ivr.live.routing.KINDS)
    call_id: str
    agent_id: str
    to: str = ""
    from_: str = ""
    tries: int = 0


class Outbox(Protocol):
    def add(self, intents: list[Intent], now: float, claimed: bool = False) -> None:
        """Record intents, inside the caller's open routing transaction; ``claimed``:
        already claimed by this process's sender, which is handed them after the commit
        (no claim transaction; another sender takes them over only after ``CLAIM_TTL_S``)."""
        ...

    def claim(self, now: float, limit: int = 16) -> list[Intent]:
        """Take up to ``limit`` due intents for sending (each claimed by one sender)."""
        ...

    def sent(self, keys: list[str]) -> None:
        """Twilio took these intents (one transaction for a sender's batch)."""
        ...

    def failed(self, key: str, error: str, now: float) -> bool:
        """Record a failed try; True when it was the last (the intent is given up)."""
        ...

    def delivered(self, call_id: str, agent_id: str) -> bool | None:
        """Whether Twilio took the latest intent for this call and agent (None: no intent)."""
        ...

    def counts(self) -> dict[str, int]: ...

    def prune(self, before: float) -> int:
        """Forget finished intents created before ``before``; returns how many."""
        ...


def _due(now: float, n: int) -> float:
    """When the ``n``-th intent recorded together is due: 10 µs apart, so the
    sender keeps the order they were recorded in (a hold before the consult it serves)."""
    return now + n * 1e-5


def _backoff(tries: int) -> float:
    return BACKOFF_S[min(tries - 1, len(BACKOFF_S) - 1)]


class SqlOutbox:
    """The outbox as a table of the store. ``connect()`` gives this thread's connection
    with ``?`` placeholders (inside a routing update, that update's transaction);
    ``write()`` a write transaction on it: SQLite's ``BEGIN IMMEDIATE`` in line with the
    other writers by default, or PostgreSQL's (:class:`ivr.live.postgres.PostgresConnect`,
    whose schema ``ivr db upgrade`` makes). The SQL is the same for both."""

    def __init__(self, connect: Callable[[], Any],
                 write: Callable[[], AbstractContextManager[Any]] | None = None) -> None:
        self._connect = connect
        self._tx = write or (lambda: immediate(connect()))
        connect().executescript(SCHEMA)

    def add(self, intents: list[Intent], now: float, claimed: bool = False) -> None:
        state, claimed_at = ("sending", now) if claimed else ("pending", None)
        self._connect().executemany(
            "INSERT INTO outbox (key, kind, call_id, agent_id, target, state, "
            "due_at, claimed_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            [(i.key, i.kind, i.call_id, i.agent_id, f"{i.to} {i.from_}".strip(), state,
              _due(now, n), claimed_at, now) for n, i in enumerate(intents)])

    def _write(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._tx() as conn:
            return list(conn.execute(sql, args).fetchall())

    def claim(self, now: float, limit: int = 16) -> list[Intent]:
        due = self._connect().execute(  # a read first: an idle sender takes no write lock
            "SELECT 1 FROM outbox WHERE (state = 'pending' AND due_at <= ?) OR "
            "(state = 'sending' AND claimed_at < ?) LIMIT 1",
            (now, now - CLAIM_TTL_S)).fetchone()
        if due is None:
            return []
        # The condition is repeated outside the subquery: on PostgreSQL, a sender that
        # waited for another host's claim of the same row sees it claimed and skips it.
        rows = self._write(
            "UPDATE outbox SET state = 'sending', claimed_at = ? WHERE key IN ("
            "SELECT key FROM outbox WHERE (state = 'pending' AND due_at <= ?) OR "
            "(state = 'sending' AND claimed_at < ?) ORDER BY due_at LIMIT ?) "
            "AND ((state = 'pending' AND due_at <= ?) OR (state = 'sending' AND claimed_at < ?)) "
            "RETURNING key, kind, call_id, agent_id, target, tries, due_at",
            (now, now, now - CLAIM_TTL_S, limit, now, now - CLAIM_TTL_S))
        out = []
        for key, kind, call_id, agent_id, target, tries, _ in sorted(rows, key=lambda r: r[6]):
            to, _, from_ = str(target).partition(" ")
            out.append(Intent(key, kind, call_id, agent_id, to, from_, int(tries)))
        return out

    def sent(self, keys: list[str]) -> None:
        if not keys:
            return
        with self._tx() as conn:
            conn.executemany("UPDATE outbox SET state = 'sent', tries = tries + 1, "
                             "error = NULL WHERE key = ?", [(k,) for k in keys])

    def failed(self, key: str, error: str, now: float) -> bool:
        rows = self._write("SELECT tries FROM outbox WHERE key = ?", (key,))
        tries = (int(rows[0][0]) if rows else 0) + 1
        final = tries >= MAX_TRIES
        self._write("UPDATE outbox SET state = ?, tries = ?, error = ?, due_at = ? "
                    "WHERE key = ?", ("failed" if final else "pending", tries, error[:300],
                                      now + (0 if final else _backoff(tries)), key))
        return final

    def delivered(self, call_id: str, agent_id: str) -> bool | None:
        row = self._connect().execute(
            "SELECT state FROM outbox WHERE call_id = ? AND agent_id = ? AND kind IN "
            "('connect', 'ring') ORDER BY created_at DESC, key DESC LIMIT 1",
            (call_id, agent_id)).fetchone()
        return None if row is None else row[0] == "sent"

    def counts(self) -> dict[str, int]:
        rows = self._connect().execute("SELECT state, COUNT(*) FROM outbox GROUP BY state")
        return {str(state): int(n) for state, n in rows}

    def prune(self, before: float) -> int:
        with self._tx() as conn:
            return int(conn.execute("DELETE FROM outbox WHERE state IN ('sent', 'failed') AND "
                                    "created_at < ?", (before,)).rowcount)


@dataclass
class MemoryOutbox:
    """The outbox in this process only (tests, ``ivr call``, one-worker servers)."""

    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def add(self, intents: list[Intent], now: float, claimed: bool = False) -> None:
        with self._lock:
            for n, i in enumerate(intents):
                self.rows.setdefault(i.key, {
                    "intent": i, "state": "sending" if claimed else "pending", "tries": 0,
                    "due_at": _due(now, n), "claimed_at": now if claimed else None,
                    "created_at": now})

    def claim(self, now: float, limit: int = 16) -> list[Intent]:
        with self._lock:
            out = []
            for row in sorted(self.rows.values(), key=lambda r: r["due_at"]):
                stale = row["state"] == "sending" and row["claimed_at"] < now - CLAIM_TTL_S
                if (row["state"] == "pending" and row["due_at"] <= now) or stale:
                    row["state"], row["claimed_at"] = "sending", now
                    i = row["intent"]
                    out.append(Intent(i.key, i.kind, i.call_id, i.agent_id, i.to, i.from_,
                                      row["tries"]))
                    if len(out) >= limit:
                        break
            return out

    def sent(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                self.rows[key]["state"] = "sent"
                self.rows[key]["tries"] += 1

    def failed(self, key: str, error: str, now: float) -> bool:
        with self._lock:
            row = self.rows[key]
            row["tries"] += 1
            final = row["tries"] >= MAX_TRIES
            row["state"] = "failed" if final else "pending"
            row["due_at"] = now + (0 if final else _backoff(row["tries"]))
            return final

    def delivered(self, call_id: str, agent_id: str) -> bool | None:
        with self._lock:
            mine = [r for r in self.rows.values()
                    if (r["intent"].call_id, r["intent"].agent_id) == (call_id, agent_id)
                    and r["intent"].kind in ("connect", "ring")]
            return None if not mine else mine[-1]["state"] == "sent"

    def counts(self) -> dict[str, int]:
        with self._lock:
            out: dict[str, int] = {}
            for r in self.rows.values():
                out[r["state"]] = out.get(r["state"], 0) + 1
            return out

    def prune(self, before: float) -> int:
        with self._lock:
            old = [k for k, r in self.rows.items()
                   if r["state"] in ("sent", "failed") and r["created_at"] < before]
            for k in old:
                del self.rows[k]
            return len(old)


def wall_clock() -> float:
    return time.time()
