"""The live router's state, shared by every worker process.

The router itself (``routing.Router``) is pure and in memory. Live, its state is a
JSON snapshot in the SQLite store with a version number: each operation runs inside
one ``BEGIN IMMEDIATE`` transaction (the same one as the call's step when there is
one), reloads the snapshot only if its stamp changed (another process wrote), applies the
operation, and writes the snapshot back with its decisions. SQLite's write lock
makes every routing operation atomic across processes, so an agent is never
reserved beyond capacity and no waiting call is lost, even across restarts.

The cost is one snapshot write per operation (a few ms for 200 agents, about 0.2 s at
10,000): right for one machine's contact center; the Redis tier is the way past that.
Decisions are stored one by one in ``routing_decisions``, not in the snapshot.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, TypeVar

from routing import Decision, Router, RoutingPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Calls whose decisions the snapshot keeps; the full record is in routing_decisions.
HISTORY = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS router_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL,  -- a random stamp per write
    snapshot TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS routing_decisions (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS routing_decisions_by_call ON routing_decisions (call_id, id);
CREATE TABLE IF NOT EXISTS routing_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_contacts (
    agent_id TEXT PRIMARY KEY,
    contact  TEXT NOT NULL
);
"""


class RoutingState(Protocol):
    """Exclusive access to the shared router."""

    def update(self) -> Any:
        """Context manager yielding the Router; its state, and every decision it logged
        meanwhile (for ``ivr route explain``), are saved on exit."""
        ...

    def read(self) -> Router:
        """The current router, for a single-threaded reader (a CLI, a test); servers use
        :meth:`query`, which holds the lock while the question is answered."""
        ...

    def query(self, question: Callable[[Router], T]) -> T:
        """Answer a read-only question about the current router (stats, estimates)."""
        ...

    def decisions(self, call_id: str) -> list[dict[str, Any]]: ...

    def contact(self, agent_id: str) -> str | None: ...

    def set_contact(self, agent_id: str, contact: str) -> None: ...

    def meta(self, key: str) -> str | None:
        """A small named value kept with the router (e.g. the statistics day)."""
        ...

    def set_meta(self, key: str, value: str) -> None: ...


class SQLiteRoutingState:
    """Router snapshot and decisions in the call store's SQLite file."""

    def __init__(self, connect: Any, policy: RoutingPolicy) -> None:
        """``connect()`` returns this thread's connection to the store (autocommit mode)."""
        self._connect = connect
        self.policy = policy
        self._policy_json = policy.model_dump(mode="json")
        self._cache: tuple[int, Router] | None = None
        self._lock = threading.Lock()
        self._pending: list[Decision] = []
        conn = connect()
        conn.executescript(SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        if conn.in_transaction:  # inside a call step: share its transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # never leave a failed write open on this connection
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    def _load(self, conn: sqlite3.Connection) -> tuple[int, Router]:
        row = conn.execute("SELECT version FROM router_state WHERE id = 1").fetchone()
        if row is None:
            return 0, Router(self.policy, history_limit=HISTORY)
        version = int(row[0])
        if self._cache is not None and self._cache[0] == version:
            return self._cache
        (snapshot,) = conn.execute("SELECT snapshot FROM router_state WHERE id = 1").fetchone()
        data = json.loads(snapshot)
        if data["policy"] != self._policy_json:  # routing.yaml changed since the snapshot
            try:
                return version, Router.from_dict({**data, "policy": self._policy_json},
                                                 history_limit=HISTORY)
            except Exception:
                log.exception("routing policy change does not fit the waiting calls; "
                              "keeping the policy they were queued under")
        return version, Router.from_dict(data, history_limit=HISTORY)

    @contextmanager
    def update(self) -> Iterator[Router]:
        # The database's write lock first, then this process's lock: a thread never holds
        # the process lock while it waits for another connection's transaction.
        with self._tx() as conn, self._lock:
            _, router = self._load(conn)
            # A fresh random stamp, not a counter: a rolled-back write must never match
            # the stamp that another process writes next.
            stamp = secrets.randbits(62)
            self._pending = []
            router.watch(self._pending.append)  # every decision of this update, once
            try:
                yield router
            except BaseException:
                self._cache = None  # the in-memory router may be half-changed
                raise
            finally:
                router.watch(None)
            conn.execute(
                "INSERT INTO router_state (id, version, snapshot) VALUES (1, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET version = excluded.version, "
                "snapshot = excluded.snapshot",
                (stamp, json.dumps(router.to_dict(history=False))))
            conn.executemany("INSERT INTO routing_decisions (call_id, data) VALUES (?, ?)",
                             [(d.call_id, json.dumps(d.as_dict(), default=str))
                              for d in self._pending])
            self._pending = []
            self._cache = (stamp, router)

    def read(self) -> Router:
        return self.query(lambda router: router)

    def query(self, question: Callable[[Router], T]) -> T:
        with self._lock:
            version, router = self._load(self._connect())
            self._cache = (version, router)
            return question(router)

    def decisions(self, call_id: str) -> list[dict[str, Any]]:
        rows = self._connect().execute(
            "SELECT data FROM routing_decisions WHERE call_id = ? ORDER BY id", (call_id,))
        return [json.loads(r[0]) for r in rows]

    def contact(self, agent_id: str) -> str | None:
        row = self._connect().execute("SELECT contact FROM agent_contacts WHERE agent_id = ?",
                                      (agent_id,)).fetchone()
        return row[0] if row else None

    def set_contact(self, agent_id: str, contact: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO agent_contacts (agent_id, contact) VALUES (?, ?)",
                         (agent_id, contact))

    def meta(self, key: str) -> str | None:
        row = self._connect().execute("SELECT value FROM routing_meta WHERE key = ?",
                                      (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO routing_meta (key, value) VALUES (?, ?)",
                         (key, value))


@dataclass
class MemoryRoutingState:
    """The router in this process only: tests, ``ivr call`` and one-worker servers."""

    policy: RoutingPolicy
    router: Router | None = None
    _decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _contacts: dict[str, str] = field(default_factory=dict)
    _meta: dict[str, str] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.router = self.router or Router(self.policy, history_limit=HISTORY)

    @contextmanager
    def update(self) -> Iterator[Router]:
        with self._lock:
            assert self.router is not None
            logged: list[Decision] = []
            self.router.watch(logged.append)
            try:
                yield self.router
            finally:
                self.router.watch(None)
            for d in logged:
                self._decisions.setdefault(d.call_id, []).append(
                    json.loads(json.dumps(d.as_dict(), default=str)))

    def read(self) -> Router:
        assert self.router is not None
        return self.router

    def query(self, question: Callable[[Router], T]) -> T:
        with self._lock:
            return question(self.read())

    def decisions(self, call_id: str) -> list[dict[str, Any]]:
        return list(self._decisions.get(call_id, []))

    def contact(self, agent_id: str) -> str | None:
        return self._contacts.get(agent_id)

    def set_contact(self, agent_id: str, contact: str) -> None:
        self._contacts[agent_id] = contact

    def meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value
