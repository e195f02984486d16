"""Where call state lives between webhooks: sessions, the TwiML answered per turn (so a
repeated webhook gets the same answer), routing requests, and an audit log.

Two implementations of one interface: :class:`SQLiteStore`, the embedded default
(one file, WAL mode, one ``BEGIN IMMEDIATE`` transaction per call step, so several
worker processes never interleave on a call and a restart loses nothing), and
:class:`MemoryStore` for tests, the console and the simulator.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from ivr.engine.session import Session
from ivr.errors import StoreError
from ivr.live.sqlite_lock import LockedConnection, immediate, write_lock

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    call_id    TEXT PRIMARY KEY,
    flow_id    TEXT NOT NULL,
    status     TEXT NOT NULL,
    turn       INTEGER NOT NULL,
    session    TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS responses (
    call_id TEXT NOT NULL,
    turn    INTEGER NOT NULL,
    twiml   TEXT NOT NULL,
    PRIMARY KEY (call_id, turn)
);
CREATE TABLE IF NOT EXISTS route_requests (
    call_id    TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    request    TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    at      REAL NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_call ON events (call_id, id);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions (updated_at);
CREATE TABLE IF NOT EXISTS health (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at REAL NOT NULL
);
"""


class CallRecord(Protocol):
    """One call's stored state, open inside :meth:`Store.transaction`."""

    session: Session | None

    def response(self, turn: int) -> str | None:
        """The TwiML answered at ``turn`` (None if that turn was never answered)."""
        ...

    def save(self, session: Session, twiml: str, events: list[dict[str, Any]]) -> None:
        """Store the new session, the TwiML of its turn, its route request and events."""
        ...


class Store(Protocol):
    """Call state shared by every worker."""

    def transaction(self, call_id: str) -> Any:
        """Context manager yielding the call's :class:`CallRecord`, exclusive for its span."""
        ...

    def get_session(self, call_id: str) -> Session | None: ...

    def route_request(self, call_id: str) -> dict[str, Any] | None: ...

    def events(self, call_id: str) -> list[dict[str, Any]]: ...

    def sessions_since(self, since: float, until: float = math.inf) -> list[Session]:
        """Sessions of calls last updated in [``since``, ``until``) (epoch seconds, by
        the session's own clock, which is the app's: the one reports and replays ask
        by), oldest first."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreError` when the store cannot be used."""
        ...


# ------------------------------------------------------------------ SQLite


@dataclass
class _SQLiteRecord:
    conn: sqlite3.Connection
    call_id: str
    session: Session | None

    def response(self, turn: int) -> str | None:
        row = self.conn.execute("SELECT twiml FROM responses WHERE call_id=? AND turn=?",
                                (self.call_id, turn)).fetchone()
        return row[0] if row else None

    def save(self, session: Session, twiml: str, events: list[dict[str, Any]]) -> None:
        now = time.time()
        self.conn.execute(
            "INSERT INTO sessions (call_id, flow_id, status, turn, session, updated_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(call_id) DO UPDATE SET flow_id=excluded.flow_id, "
            "status=excluded.status, turn=excluded.turn, session=excluded.session, "
            "updated_at=excluded.updated_at",
            (session.call_id, session.flow_id, session.status, session.turn, session.to_json(),
             session.updated_at.timestamp()))
        self.conn.execute("INSERT OR REPLACE INTO responses (call_id, turn, twiml) VALUES (?,?,?)",
                          (session.call_id, session.turn, twiml))
        if session.route is not None:
            self.conn.execute(
                "INSERT OR REPLACE INTO route_requests (call_id, queue, request, created_at) "
                "VALUES (?,?,?,?)",
                (session.call_id, session.route["queue"], json.dumps(session.route), now))
        self.conn.executemany(
            "INSERT INTO events (call_id, at, kind, data) VALUES (?,?,?,?)",
            [(session.call_id, now, e.get("kind", "step"), json.dumps(e, default=str))
             for e in events])
        self.session = session


class SQLiteStore:
    """The embedded default store: one SQLite file shared by every worker process."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._busy_ms = int(busy_timeout_s * 1000)
        self._local = threading.local()
        self._write_lock = write_lock(self.path)
        #: Set by a server that runs :meth:`checkpoint` in a background thread: its
        #: connections then never checkpoint the WAL at a commit (which copies the WAL
        #: into the file and syncs it while the write lock is held: up to 0.5 s with
        #: a 10,000-agent router's snapshots in the WAL).
        self.checkpoint_in_background = False
        conn = self.connection()
        conn.executescript(SCHEMA)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (one per thread and process: a forked worker must not
        reuse its parent's)."""
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            try:
                conn = sqlite3.connect(self.path, isolation_level=None,
                                       timeout=self._busy_ms / 1000, check_same_thread=False,
                                       factory=LockedConnection)
                conn.write_lock, conn.busy_s = self._write_lock, self._busy_ms / 1000
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
                if self.checkpoint_in_background:
                    conn.execute("PRAGMA wal_autocheckpoint=0")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the call store {self.path}: {exc}") from exc
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def reset(self) -> None:
        """Drop this thread's connection after a database error, so the next request
        starts clean (no half-open transaction survives a full disk or a lock)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    @contextmanager
    def transaction(self, call_id: str) -> Iterator[_SQLiteRecord]:
        conn = self.connection()
        try:
            with immediate(conn):
                row = conn.execute("SELECT session FROM sessions WHERE call_id=?",
                                   (call_id,)).fetchone()
                yield _SQLiteRecord(conn, call_id, Session.from_json(row[0]) if row else None)
        except sqlite3.Error as exc:
            self.reset()
            raise StoreError(f"call store {self.path} is busy or cannot be written: {exc}"
                             ) from exc

    def get_session(self, call_id: str) -> Session | None:
        row = self.connection().execute("SELECT session FROM sessions WHERE call_id=?",
                                   (call_id,)).fetchone()
        return Session.from_json(row[0]) if row else None

    def route_request(self, call_id: str) -> dict[str, Any] | None:
        row = self.connection().execute("SELECT request FROM route_requests WHERE call_id=?",
                                   (call_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def events(self, call_id: str) -> list[dict[str, Any]]:
        rows = self.connection().execute("SELECT data FROM events WHERE call_id=? ORDER BY id",
                                    (call_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def sessions_since(self, since: float, until: float = math.inf) -> list[Session]:
        rows = self.connection().execute(
            "SELECT session FROM sessions WHERE updated_at >= ? AND updated_at < ? "
            "ORDER BY updated_at", (since, until)).fetchall()
        return [Session.from_json(r[0]) for r in rows]

    def checkpoint(self) -> None:
        """Copy the WAL into the database file as far as readers allow, without taking
        the write lock (SQLite's PASSIVE checkpoint)."""
        self.connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def ping(self) -> None:
        """A real write, under a short lock wait: a read-only, full or locked store fails."""
        try:
            conn = self.connection()
            conn.execute("PRAGMA busy_timeout=1000")
            try:
                with immediate(conn, timeout_s=1.0):
                    conn.execute("INSERT OR REPLACE INTO health (id, at) VALUES (1, ?)",
                                 (time.time(),))
            finally:
                conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")
        except sqlite3.Error as exc:
            self.reset()
            raise StoreError(f"call store {self.path} cannot be written: {exc}") from exc


# ------------------------------------------------------------------ memory


@dataclass
class _MemoryRecord:
    store: MemoryStore
    call_id: str
    session: Session | None

    def response(self, turn: int) -> str | None:
        return self.store._responses.get((self.call_id, turn))

    def save(self, session: Session, twiml: str, events: list[dict[str, Any]]) -> None:
        self.store._sessions[session.call_id] = session
        self.store._responses[(session.call_id, session.turn)] = twiml
        if session.route is not None:
            self.store._routes[session.call_id] = dict(session.route)
        self.store._events.setdefault(session.call_id, []).extend(
            json.loads(json.dumps(e, default=str)) for e in events)
        self.session = session


@dataclass
class MemoryStore:
    """Call state in this process only: for tests, ``ivr call`` and the simulator."""

    _sessions: dict[str, Session] = field(default_factory=dict)
    _responses: dict[tuple[str, int], str] = field(default_factory=dict)
    _routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    _events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    @contextmanager
    def transaction(self, call_id: str) -> Iterator[_MemoryRecord]:
        with self._lock:
            yield _MemoryRecord(self, call_id, self._sessions.get(call_id))

    def get_session(self, call_id: str) -> Session | None:
        return self._sessions.get(call_id)

    def route_request(self, call_id: str) -> dict[str, Any] | None:
        return self._routes.get(call_id)

    def events(self, call_id: str) -> list[dict[str, Any]]:
        return list(self._events.get(call_id, []))

    def sessions_since(self, since: float, until: float = math.inf) -> list[Session]:
        with self._lock:
            found = [s for s in self._sessions.values()
                     if since <= s.updated_at.timestamp() < until]
        return sorted(found, key=lambda s: s.updated_at)

    def ping(self) -> None:
        return None
