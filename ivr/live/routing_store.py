"""The live router's state, shared by every worker process and every host.

The router itself (``routing.Router``) is pure and in memory. Live, every process keeps
its own router and the store keeps a **journal**: each routing operation is one small
command record (``seq``, ``now``, ``op``, ``args``; see ``ivr.live.journal``). An
operation runs under the store's routing lock (SQLite's write lock, or PostgreSQL's
transaction-scoped advisory lock; the same transaction as the call's step when there is
one): the process first applies the records it has not seen, then runs and records its
own. The router is pure and time is an argument, so every process holds the same router,
and an operation costs the same at 100 agents as at 10,000.

Now and then (every ``snapshot_every`` operations, or when this process has not seen a
snapshot for ``snapshot_seconds``) the whole router is written as a snapshot, so that a
process starts from it rather than from the first record; the journal and snapshots
behind the newest snapshot at least ``snapshot_every`` records older are pruned (that
much slack, so a process a little behind just replays). A process that finds its last
record gone (its transaction was rolled back, or it fell that far behind) reloads from
the newest snapshot and the records after it.

Decisions are stored one by one in ``routing_decisions`` by the process that made them.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, TypeVar

from ivr.live.journal import Command, RecordingRouter, replay
from ivr.live.sqlite_lock import immediate
from routing import Decision, Router, RoutingPolicy

log = logging.getLogger(__name__)
T = TypeVar("T")
#: Calls whose decisions the router keeps; the full record is in routing_decisions.
HISTORY = 200
#: Meta key counting commands whose clock was behind the journal's (clamped forward).
CLAMPS = "clock_clamps"
#: A clamp by more than this (seconds) is logged as a clock problem. Smaller ones are
#: the ordinary race of two requests that read the clock, then queue for the lock in
#: the other order: counted, not logged (at saturation that was one warning per ~10
#: operations, ~1 % of a worker's CPU in bench_live).
CLOCK_SKEW_S = 1.0

#: Records between snapshots. A snapshot costs in proportion to the router (about 30 ms of
#: CPU at 1,000 agents): every 500 records it took 3 % of a worker's CPU on the live call
#: path (``scripts/bench_live.py``, py-spy); a process starting replays at most twice this
#: many records (about 20 µs each) after the newest snapshot.
SNAPSHOT_EVERY = 2000

SCHEMA = """
CREATE TABLE IF NOT EXISTS routing_journal (
    seq   INTEGER PRIMARY KEY,
    stamp INTEGER NOT NULL,  -- random per record: tells a rolled-back record from its successor
    at    REAL NOT NULL,     -- the command's now, after the clock clamp
    op    TEXT NOT NULL,
    args  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS routing_snapshots (
    seq      INTEGER PRIMARY KEY,
    stamp    INTEGER NOT NULL,
    at       REAL NOT NULL,
    taken_at REAL NOT NULL,  -- wall clock, for the snapshot age
    data     TEXT NOT NULL
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
        """Context manager yielding the router to change (a :class:`RecordingRouter`);
        its operations, and every decision it logged meanwhile (for ``ivr route explain``),
        are saved on exit."""
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


class Sql(Protocol):
    """A DB-API-like connection inside a transaction, with ``?`` placeholders."""

    def execute(self, sql: str, params: Any = ()) -> Any: ...

    def executemany(self, sql: str, rows: Any) -> Any: ...


class RoutingDB(Protocol):
    """What a backend gives the journal: the routing lock and plain reads."""

    def locked(self) -> AbstractContextManager[Sql]:
        """A transaction holding the routing lock until it ends (joining the call step's
        transaction when this thread is inside one)."""
        ...

    def reading(self) -> AbstractContextManager[Sql]:
        """A connection for reads, without the lock."""
        ...

    def locked_reading(self, sql: str, params: Any
                       ) -> AbstractContextManager[tuple[Sql, list[Any]]]:
        """:meth:`locked`, and the rows of ``sql`` read once the lock is held (PostgreSQL
        sends both in one round trip: the lock is shared by every host, and each round
        trip under it counts)."""
        ...

    def batch(self, conn: Any) -> AbstractContextManager[Any]:
        """Writes sent together (PostgreSQL's pipeline), for the records of an update."""
        ...


@dataclass
class JournalStats:
    """This process's journal figures, for ``/metrics``."""

    applied: int = 0       # others' records applied before an operation or a question
    recorded: int = 0      # records this process wrote
    clamped: int = 0       # of them, run at the journal's time because our clock was behind
    reloads: int = 0       # full reloads from a snapshot
    snapshots: int = 0     # snapshots this process wrote
    lag: int = 0           # records applied at the last catch-up


@dataclass
class _Replica:
    """A router and the last journal record applied to it."""

    router: Router
    seq: int = 0                 # last record applied
    stamp: int = 0               # its stamp
    at: float = float("-inf")    # its now: the journal's clock


class JournalRoutingState:
    """The shared router as a journal of commands plus snapshots, over a :class:`RoutingDB`.

    Snapshots are written off the routing lock: a process keeps a second router, the
    *shadow*, that it brings to the journal's head by plain reads and serialises without
    any lock; only the insert of the finished text (and the pruning) takes the lock. With
    ``background_snapshots`` a daemon thread does this when one is due (``ivr serve``);
    otherwise the thread whose operation made it due does it after its update."""

    def __init__(self, db: RoutingDB, policy: RoutingPolicy, *,
                 snapshot_every: int = SNAPSHOT_EVERY,
                 snapshot_seconds: float = 60.0, background_snapshots: bool = False,
                 wall: Callable[[], float] = time.time) -> None:
        self.db = db
        self.policy = policy
        self.snapshot_every = snapshot_every
        self.snapshot_seconds = snapshot_seconds
        self.background_snapshots = background_snapshots
        self._wall = wall
        self._policy_json = policy.model_dump(mode="json")
        self._lock = threading.RLock()
        self._live: _Replica | None = None
        self._snap_taken = wall()
        self._shadow: _Replica | None = None
        self._shadow_lock = threading.Lock()
        self._snap_wanted = threading.Event()
        self._snap_thread_pid = 0
        self.stats = JournalStats()
        #: Called with each routing operation's seconds inside the routing lock (catch-up,
        #: the operation, its records), e.g. by /metrics.
        self.observe: Callable[[float], None] = lambda seconds: None
        #: Called with the seconds each update waited for the routing lock.
        self.observe_wait: Callable[[float], None] = lambda seconds: None

    @property
    def _router(self) -> Router | None:
        return self._live.router if self._live else None

    @property
    def _seq(self) -> int:
        return self._live.seq if self._live else 0

    @property
    def _at(self) -> float:
        return self._live.at if self._live else float("-inf")

    # ----------------------------------------------------------- the journal

    def _fresh(self) -> Router:
        return Router(self.policy, history_limit=HISTORY)

    def _from_snapshot(self, data: dict[str, Any]) -> Router:
        if data["policy"] != self._policy_json:  # routing.yaml changed since the snapshot
            try:
                return Router.from_dict({**data, "policy": self._policy_json},
                                        history_limit=HISTORY)
            except Exception:
                log.exception("routing policy change does not fit the waiting calls; "
                              "keeping the policy they were queued under")
        return Router.from_dict(data, history_limit=HISTORY)

    def _apply_rows(self, replica: _Replica, rows: list[Any]) -> int:
        replay(replica.router, (Command(op, json.loads(args), at)
                                for _, _, at, op, args in rows))
        if rows:
            replica.seq, replica.stamp, replica.at = (int(rows[-1][0]), int(rows[-1][1]),
                                                      rows[-1][2])
        return len(rows)

    def _load(self, conn: Sql) -> _Replica:
        """A replica from the newest snapshot and the journal after it."""
        row = conn.execute("SELECT seq, stamp, at, taken_at, data FROM routing_snapshots "
                           "ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            replica = _Replica(self._fresh())
        else:
            replica = _Replica(self._from_snapshot(json.loads(row[4])), int(row[0]),
                               int(row[1]), row[2])
            self._snap_taken = max(self._snap_taken, row[3])
        rows = conn.execute("SELECT seq, stamp, at, op, args FROM routing_journal "
                            "WHERE seq > ? ORDER BY seq", (replica.seq,)).fetchall()
        self._apply_rows(replica, rows)
        return replica

    def _advance(self, conn: Sql, replica: _Replica | None, rows: list[Any] | None = None
                 ) -> tuple[_Replica, int]:
        """``replica`` brought to the journal's head: the records it has not seen applied,
        or reloaded when its own last record is gone (rolled back, or pruned behind a newer
        snapshot). Returns it and how many records were applied (-1: reloaded)."""
        if replica is not None and replica.seq:
            if rows is None:
                rows = conn.execute(SINCE, (replica.seq,)).fetchall()
            if rows and int(rows[0][0]) == replica.seq and int(rows[0][1]) == replica.stamp:
                return replica, self._apply_rows(replica, rows[1:])
        return self._load(conn), -1

    def _catch_up(self, conn: Sql, rows: list[Any] | None = None) -> Router:
        """The live router at the journal's head (this process's lock held); ``rows``:
        the journal from the live router's record on, when already read."""
        self._live, applied = self._advance(conn, self._live, rows)
        if applied < 0:
            self.stats.reloads += 1
            self.stats.lag = 0
        else:
            self.stats.applied += applied
            self.stats.lag = applied
        return self._live.router

    @contextmanager
    def update(self) -> Iterator[RecordingRouter]:
        due = False
        asked = time.perf_counter()
        with self._lock:
            seen = self._seq if self._live is not None else 0
        locking = self.db.locked_reading(SINCE, (seen,)) if seen else _no_rows(self.db)
        with locking as (conn, rows), self._lock:
            started = time.perf_counter()
            self.observe_wait(started - asked)
            router = self._catch_up(conn, rows if seen and seen == self._seq else None)
            live = self._live
            assert live is not None
            records: list[tuple[int, int, float, str, str]] = []
            clamped = 0

            def record(op: str, args: dict[str, Any], now: float) -> float:
                nonlocal clamped
                at = now
                if at == float("-inf"):  # an operation without a time takes the journal's
                    at = max(live.at, 0.0)
                elif at < live.at:
                    clamped += 1
                    if live.at - at > CLOCK_SKEW_S:
                        log.warning("routing command's clock is behind the journal's; "
                                    "clamped", extra={"op": op, "behind_s": live.at - at})
                    at = live.at
                live.seq += 1
                live.stamp = secrets.randbits(62)
                live.at = at
                records.append((live.seq, live.stamp, at, op, json.dumps(args)))
                return at

            decisions: list[Decision] = []
            router.watch(decisions.append)  # every decision of this update, once
            try:
                yield RecordingRouter(router, record)
            except BaseException:
                self._live = None  # half-changed, and its records are not written
                raise
            finally:
                router.watch(None)
            with self.db.batch(conn):
                if records:
                    conn.executemany("INSERT INTO routing_journal (seq, stamp, at, op, args) "
                                     "VALUES (?, ?, ?, ?, ?)", records)
                if decisions:
                    conn.executemany(
                        "INSERT INTO routing_decisions (call_id, data) VALUES (?, ?)",
                        [(d.call_id, json.dumps(d.as_dict(), default=str)) for d in decisions])
            self.stats.recorded += len(records)
            if clamped:
                self.stats.clamped += clamped
                self._bump(conn, CLAMPS, clamped)
            due = bool(records) and self._snapshot_due(len(records))
            self.observe(time.perf_counter() - started)
        if due:
            self._snap_taken = self._wall()  # asked for: no second request meanwhile
            if self.background_snapshots:
                self._start_snapshotter()
                self._snap_wanted.set()
            else:
                self.write_snapshot()

    def _snapshot_due(self, written: int) -> bool:
        """At every multiple of ``snapshot_every`` records (doubled while the router holds
        more than four times that many agents and calls: a snapshot costs in proportion to
        the router, and this keeps its cost per operation bounded at 10,000 agents; the
        multiples are the same for every process, so one of them writes each snapshot),
        or after ``snapshot_seconds``."""
        router = self._router
        size = len(router.agents) + len(router.calls) if router is not None else 0
        every = self.snapshot_every
        while every * 4 < size:
            every *= 2
        crossed = self._seq // every != (self._seq - written) // every
        return crossed or self._wall() - self._snap_taken > self.snapshot_seconds

    def _start_snapshotter(self) -> None:
        import os

        with self._shadow_lock:
            if self._snap_thread_pid == os.getpid():
                return
            self._snap_thread_pid = os.getpid()  # a forked worker starts its own
        threading.Thread(target=self._snapshot_loop, name="ivr-snapshot", daemon=True).start()

    def _snapshot_loop(self) -> None:
        while True:
            self._snap_wanted.wait()
            self._snap_wanted.clear()
            try:
                self.write_snapshot()
            except Exception:
                log.exception("routing snapshot failed; the journal keeps everything, will "
                              "try again at the next one due")

    def write_snapshot(self) -> int:
        """Write the router at the journal's head as a snapshot, then prune the journal
        and snapshots behind the newest snapshot at least ``snapshot_every`` records older:
        however often processes snapshot, one that is less than that far behind just
        replays (pruning closer made the others reload the whole router again and again).
        The router is the shadow, brought up to date and serialised without any lock;
        returns the snapshot's record."""
        with self._shadow_lock:
            with self.db.reading() as conn:
                self._shadow, _ = self._advance(conn, self._shadow)
            shadow = self._shadow
            data = _dumps_in_pieces(shadow.router.to_dict())
        taken = self._wall()
        with self.db.locked() as conn:
            conn.execute("INSERT INTO routing_snapshots (seq, stamp, at, taken_at, data) "
                         "VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
                         (shadow.seq, shadow.stamp, shadow.at, taken, data))
            prev = conn.execute("SELECT max(seq) FROM routing_snapshots WHERE seq <= ?",
                                (shadow.seq - self.snapshot_every,)).fetchone()
            if prev and prev[0] is not None:
                conn.execute("DELETE FROM routing_journal WHERE seq <= ?", (prev[0],))
                conn.execute("DELETE FROM routing_snapshots WHERE seq < ?", (prev[0],))
        self._snap_taken = taken
        self.stats.snapshots += 1
        return shadow.seq

    def _bump(self, conn: Sql, key: str, by: int) -> None:
        conn.execute("INSERT INTO routing_meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                     "DO UPDATE SET value = CAST(CAST(routing_meta.value AS INTEGER) + ? AS TEXT)",
                     (key, str(by), by))

    # ----------------------------------------------------------- reads

    def read(self) -> Router:
        return self.query(lambda router: router)

    def query(self, question: Callable[[Router], T]) -> T:
        with self.db.reading() as conn, self._lock:
            live = self._live
            if live is not None and live.seq:
                rows = conn.execute(SINCE, (live.seq,)).fetchall()
                if not rows:
                    # Ahead of what is committed: another thread of this process ran an
                    # operation whose call step has not committed yet. A question can be
                    # answered from it; reloading (0.8 s at 10,000 agents) would block
                    # this process's operations meanwhile. Had it been rolled back, the
                    # next operation, under the lock, finds out and reloads.
                    return question(live.router)
                return question(self._catch_up(conn, rows))
            return question(self._catch_up(conn))

    def head(self) -> int:
        """The journal's newest record (0 when empty)."""
        with self.db.reading() as conn:
            row = conn.execute("SELECT max(seq) FROM routing_journal").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @property
    def seq(self) -> int:
        """The last record this process has applied."""
        return self._seq

    def decisions(self, call_id: str) -> list[dict[str, Any]]:
        with self.db.reading() as conn:
            rows = conn.execute("SELECT data FROM routing_decisions WHERE call_id = ? "
                                "ORDER BY id", (call_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def contact(self, agent_id: str) -> str | None:
        with self.db.reading() as conn:
            row = conn.execute("SELECT contact FROM agent_contacts WHERE agent_id = ?",
                               (agent_id,)).fetchone()
        return row[0] if row else None

    def set_contact(self, agent_id: str, contact: str) -> None:
        with self.db.locked() as conn:
            conn.execute("INSERT INTO agent_contacts (agent_id, contact) VALUES (?, ?) "
                         "ON CONFLICT (agent_id) DO UPDATE SET contact = excluded.contact",
                         (agent_id, contact))

    def meta(self, key: str) -> str | None:
        with self.db.reading() as conn:
            row = conn.execute("SELECT value FROM routing_meta WHERE key = ?",
                               (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.db.locked() as conn:
            conn.execute("INSERT INTO routing_meta (key, value) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


def _dumps_in_pieces(data: dict[str, Any]) -> str:
    """``json.dumps(data)``, one agent or call at a time: a single call on a 10,000-agent
    router runs ~100 ms in C without letting another thread of the process run, and one
    of those threads may hold the store's write lock that every host waits for."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            body = "[" + ",".join(json.dumps(v) for v in value) + "]"
        elif isinstance(value, dict) and len(value) > 64:
            body = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}"
                                  for k, v in value.items()) + "}"
        else:
            body = json.dumps(value)
        parts.append(f"{json.dumps(key)}:{body}")
    return "{" + ",".join(parts) + "}"


#: The journal from a record on (that record first, to check it is still the same).
SINCE = "SELECT seq, stamp, at, op, args FROM routing_journal WHERE seq >= ? ORDER BY seq"


@contextmanager
def _no_rows(db: RoutingDB) -> Iterator[tuple[Sql, None]]:
    with db.locked() as conn:
        yield conn, None


class SQLiteRoutingDB:
    """The routing lock of the SQLite store: its write lock (``BEGIN IMMEDIATE``)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        """``connect()`` returns this thread's connection to the store (autocommit mode)."""
        self._connect = connect
        conn = connect()
        conn.executescript(SCHEMA)
        _import_old_snapshot(conn)

    @contextmanager
    def locked(self) -> Iterator[Any]:
        conn = self._connect()
        if conn.in_transaction:  # inside a call step: share its transaction
            yield conn
            return
        with immediate(conn):  # a failed write never stays open on this connection
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Any]:
        yield self._connect()

    @contextmanager
    def locked_reading(self, sql: str, params: Any) -> Iterator[tuple[Any, list[Any]]]:
        with self.locked() as conn:
            yield conn, conn.execute(sql, params).fetchall()

    def batch(self, conn: Any) -> AbstractContextManager[Any]:
        return nullcontext()


def _import_old_snapshot(conn: Any) -> None:
    """A store written before the journal keeps its router: its one snapshot becomes the
    journal's first."""
    old = conn.execute("SELECT name FROM sqlite_master WHERE name = 'router_state'").fetchone()
    if old is None:
        return
    row = conn.execute("SELECT snapshot FROM router_state WHERE id = 1").fetchone()
    have = conn.execute("SELECT count(*) FROM routing_snapshots").fetchone()[0]
    if row is not None and not have:
        conn.execute("INSERT INTO routing_snapshots (seq, stamp, at, taken_at, data) "
                     "VALUES (0, 0, 0, ?, ?)", (time.time(), row[0]))
    conn.execute("DROP TABLE router_state")


def SQLiteRoutingState(connect: Callable[[], Any], policy: RoutingPolicy,  # noqa: N802
                       **options: Any) -> JournalRoutingState:
    """The journal in the call store's SQLite file (``connect`` as for :class:`SQLiteRoutingDB`)."""
    return JournalRoutingState(SQLiteRoutingDB(connect), policy, **options)


@dataclass
class MemoryRoutingState:
    """The router in this process only: tests, ``ivr call`` and one-worker servers."""

    policy: RoutingPolicy
    router: Router | None = None
    _decisions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _contacts: dict[str, str] = field(default_factory=dict)
    _meta: dict[str, str] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    observe: Callable[[float], None] = lambda seconds: None
    observe_wait: Callable[[float], None] = lambda seconds: None

    def __post_init__(self) -> None:
        self.router = self.router or Router(self.policy, history_limit=HISTORY)

    @contextmanager
    def update(self) -> Iterator[RecordingRouter]:
        asked = time.perf_counter()
        with self._lock:
            started = time.perf_counter()
            self.observe_wait(started - asked)
            assert self.router is not None
            logged: list[Decision] = []
            self.router.watch(logged.append)
            try:
                yield RecordingRouter(self.router, lambda op, args, now: now)
            finally:
                self.router.watch(None)
            for d in logged:
                self._decisions.setdefault(d.call_id, []).append(
                    json.loads(json.dumps(d.as_dict(), default=str)))
        self.observe(time.perf_counter() - started)

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
