"""PostgreSQL as the store of several hosts: call sessions and the routing journal in one
database, through psycopg 3 and a connection pool per worker process.

The same interfaces as the SQLite store (``ivr.live.calls_store.Store`` and
``ivr.live.routing_store.RoutingDB``), and the same tests run against both. Where SQLite
has one write lock, PostgreSQL gets two kinds of transaction-scoped advisory locks: one
per call (a call's webhooks never interleave, whichever host gets them) and one for the
router (routing operations are serialised across hosts, so every host applies the same
journal in the same order). A call step takes its call's lock, then the router's; nothing
takes them the other way round, so they cannot deadlock.

The schema is versioned (:data:`MIGRATIONS`) and created or migrated by ``ivr db
upgrade``, never by hand; a server refuses to start on a database behind the code.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from ivr.engine.session import Session
from ivr.errors import StoreError

#: Advisory lock classes (the first key of ``pg_advisory_xact_lock(int, int)``).
CALL_LOCK, ROUTER_LOCK, MIGRATION_LOCK, FLOWS_LOCK = 7101, 7102, 7103, 7104

#: (version, what it does, SQL). Append only: a released migration is never edited.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "call sessions, routing journal, snapshots, decisions, contacts", """
CREATE TABLE sessions (
    call_id    TEXT PRIMARY KEY,
    flow_id    TEXT NOT NULL,
    status     TEXT NOT NULL,
    turn       INTEGER NOT NULL,
    session    TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE responses (
    call_id TEXT NOT NULL,
    turn    INTEGER NOT NULL,
    twiml   TEXT NOT NULL,
    PRIMARY KEY (call_id, turn)
);
CREATE TABLE route_requests (
    call_id    TEXT PRIMARY KEY,
    queue      TEXT NOT NULL,
    request    TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE events (
    id      BIGSERIAL PRIMARY KEY,
    call_id TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    kind    TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX events_by_call ON events (call_id, id);
CREATE TABLE routing_journal (
    seq   BIGINT PRIMARY KEY,
    stamp BIGINT NOT NULL,
    at    DOUBLE PRECISION NOT NULL,
    op    TEXT NOT NULL,
    args  TEXT NOT NULL
);
CREATE TABLE routing_snapshots (
    seq      BIGINT PRIMARY KEY,
    stamp    BIGINT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    taken_at DOUBLE PRECISION NOT NULL,
    data     TEXT NOT NULL
);
CREATE TABLE routing_decisions (
    id      BIGSERIAL PRIMARY KEY,
    call_id TEXT NOT NULL,
    data    TEXT NOT NULL
);
CREATE INDEX routing_decisions_by_call ON routing_decisions (call_id, id);
CREATE TABLE routing_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE agent_contacts (
    agent_id TEXT PRIMARY KEY,
    contact  TEXT NOT NULL
);
"""),
]
MIGRATIONS.append((2, "REST outbox, users, floor events (what several hosts share)", """
CREATE TABLE outbox (
    key        TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    call_id    TEXT NOT NULL,
    agent_id   TEXT NOT NULL,
    target     TEXT NOT NULL,
    state      TEXT NOT NULL,
    tries      INTEGER NOT NULL DEFAULT 0,
    due_at     DOUBLE PRECISION NOT NULL,
    claimed_at DOUBLE PRECISION,
    error      TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_by_call ON outbox (call_id, agent_id);
CREATE TABLE users (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    agent_id     TEXT,
    password     TEXT NOT NULL,
    stamp        TEXT NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until DOUBLE PRECISION NOT NULL DEFAULT 0,
    created_at   DOUBLE PRECISION NOT NULL
);
CREATE TABLE floor_events (
    id       BIGSERIAL PRIMARY KEY,
    call_id  TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    kind     TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX floor_events_by_call ON floor_events (call_id, id);
CREATE INDEX floor_events_by_time ON floor_events (at);
"""))
MIGRATIONS.append((3, "flow versions, drafts, live pointer and audit log (publish once, live "
                   "on every host); sessions by time (reports)", """
CREATE TABLE flow_versions (
    flow_id    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    filename   TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    message    TEXT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (flow_id, version)
);
CREATE FUNCTION flow_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'flow versions are immutable'; END $$;
CREATE TRIGGER flow_versions_immutable BEFORE UPDATE OR DELETE ON flow_versions
    FOR EACH ROW EXECUTE FUNCTION flow_versions_immutable();
CREATE TABLE flow_live (
    flow_id      TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,
    published_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE flow_drafts (
    flow_id    TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    author     TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE flow_audit (
    id      BIGSERIAL PRIMARY KEY,
    flow_id TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    version INTEGER,
    message TEXT NOT NULL
);
CREATE INDEX flow_audit_by_flow ON flow_audit (flow_id, id);
CREATE INDEX sessions_by_update ON sessions (updated_at);
"""))
MIGRATIONS.append((4, "conference rooms' status callbacks (IVR_AGENT_BRIDGE=conference)", """
CREATE TABLE room_events (
    id       BIGSERIAL PRIMARY KEY,
    call_id  TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL,
    kind     TEXT NOT NULL,
    data     TEXT NOT NULL
);
CREATE INDEX room_events_by_call ON room_events (call_id, id);
CREATE INDEX room_events_by_time ON room_events (at);
"""))
LATEST = MIGRATIONS[-1][0]


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise StoreError(f"PostgreSQL needs psycopg 3: pip install 'psycopg[binary]' ({exc})"
                         ) from None
    return psycopg


class _Sql:
    """A connection inside a transaction, taking the ``?`` placeholders of the shared SQL."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.conn.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, rows: Any) -> Any:
        with self.conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)


class PostgresDatabase:
    """A pool of connections per process (a forked worker opens its own) and the thread's
    current transaction, which the call store and the routing journal share."""

    def __init__(self, url: str, *, max_size: int = 12, timeout_s: float = 10.0) -> None:
        self.url = url
        self.max_size = max_size
        self.timeout_s = timeout_s
        self._pool: Any = None
        self._pid: int | None = None
        self._local = threading.local()
        self._guard = threading.Lock()

    @property
    def where(self) -> str:
        """The URL without its password, for messages."""
        return _redact(self.url)

    def _get_pool(self) -> Any:
        if self._pool is None or self._pid != os.getpid():
            with self._guard:
                if self._pool is None or self._pid != os.getpid():
                    from psycopg_pool import ConnectionPool

                    _psycopg()
                    self._pool = ConnectionPool(self.url, min_size=1, max_size=self.max_size,
                                                timeout=self.timeout_s, open=False,
                                                name=f"ivr-{os.getpid()}")
                    try:
                        self._pool.open(wait=True, timeout=self.timeout_s)
                    except Exception as exc:
                        self._pool = None
                        raise StoreError(f"cannot reach PostgreSQL at {_redact(self.url)}: "
                                         f"{exc}") from None
                    self._pid = os.getpid()
        return self._pool

    def close(self) -> None:
        if self._pool is not None and self._pid == os.getpid():
            self._pool.close()
        self._pool = None

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """This thread's transaction: joined when one is open, else a new one."""
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        psycopg = _psycopg()
        try:
            with self._get_pool().connection() as conn:
                self._local.conn = conn
                try:
                    with conn.transaction():
                        yield conn
                finally:
                    self._local.conn = None
        except psycopg.OperationalError as exc:
            raise StoreError(f"PostgreSQL at {_redact(self.url)} failed: {exc}") from None

    @contextmanager
    def reading(self) -> Iterator[Any]:
        current = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._get_pool().connection() as conn:
            yield conn

    # ----------------------------------------------------------- schema

    def version(self) -> int:
        """The schema version of the database (0: nothing created yet)."""
        with self.reading() as conn:
            exists = conn.execute("SELECT to_regclass('ivr_schema_version')").fetchone()[0]
            if exists is None:
                return 0
            row = conn.execute("SELECT max(version) FROM ivr_schema_version").fetchone()
        return int(row[0] or 0)

    def upgrade(self) -> list[int]:
        """Apply the migrations the database lacks, in order, each in its transaction;
        several hosts upgrading at once take turns. Returns the versions applied."""
        applied: list[int] = []
        with self.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATION_LOCK,))
            conn.execute("CREATE TABLE IF NOT EXISTS ivr_schema_version ("
                         "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                         "applied_at DOUBLE PRECISION NOT NULL)")
            have = {r[0] for r in conn.execute("SELECT version FROM ivr_schema_version")}
            for version, description, sql in MIGRATIONS:
                if version in have:
                    continue
                conn.execute(sql)
                conn.execute("INSERT INTO ivr_schema_version VALUES (%s, %s, %s)",
                             (version, description, time.time()))
                applied.append(version)
        return applied

    def check_current(self) -> None:
        """Raise :class:`StoreError` unless the schema is the code's."""
        version = self.version()
        if version < LATEST:
            raise StoreError(f"database {_redact(self.url)} is at schema version {version}, "
                             f"this code needs {LATEST}: run `ivr db upgrade`")
        if version > LATEST:
            raise StoreError(f"database {_redact(self.url)} is at schema version {version}, "
                             f"newer than this code ({LATEST}): upgrade the code")


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    cred, host = rest.rsplit("@", 1)
    return f"{scheme}://{cred.split(':', 1)[0]}@{host}"


# ------------------------------------------------------------------ call store


@dataclass
class _PgRecord:
    conn: Any
    call_id: str
    session: Session | None

    def response(self, turn: int) -> str | None:
        row = self.conn.execute("SELECT twiml FROM responses WHERE call_id=%s AND turn=%s",
                                (self.call_id, turn)).fetchone()
        return row[0] if row else None

    def save(self, session: Session, twiml: str, events: list[dict[str, Any]]) -> None:
        now = time.time()
        self.conn.execute(
            "INSERT INTO sessions (call_id, flow_id, status, turn, session, updated_at) "
            "VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (call_id) DO UPDATE SET "
            "flow_id=excluded.flow_id, status=excluded.status, turn=excluded.turn, "
            "session=excluded.session, updated_at=excluded.updated_at",
            (session.call_id, session.flow_id, session.status, session.turn, session.to_json(),
             session.updated_at.timestamp()))
        self.conn.execute(
            "INSERT INTO responses (call_id, turn, twiml) VALUES (%s,%s,%s) "
            "ON CONFLICT (call_id, turn) DO UPDATE SET twiml=excluded.twiml",
            (session.call_id, session.turn, twiml))
        if session.route is not None:
            self.conn.execute(
                "INSERT INTO route_requests (call_id, queue, request, created_at) "
                "VALUES (%s,%s,%s,%s) ON CONFLICT (call_id) DO UPDATE SET "
                "queue=excluded.queue, request=excluded.request, created_at=excluded.created_at",
                (session.call_id, session.route["queue"], json.dumps(session.route), now))
        if events:
            with self.conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO events (call_id, at, kind, data) VALUES (%s,%s,%s,%s)",
                    [(session.call_id, now, e.get("kind", "step"), json.dumps(e, default=str))
                     for e in events])
        self.session = session


class PostgresStore:
    """Call state in PostgreSQL, shared by every worker of every host."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    @contextmanager
    def transaction(self, call_id: str) -> Iterator[_PgRecord]:
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CALL_LOCK, call_id))
            row = conn.execute("SELECT session FROM sessions WHERE call_id=%s",
                               (call_id,)).fetchone()
            yield _PgRecord(conn, call_id, Session.from_json(row[0]) if row else None)

    def get_session(self, call_id: str) -> Session | None:
        with self.db.reading() as conn:
            row = conn.execute("SELECT session FROM sessions WHERE call_id=%s",
                               (call_id,)).fetchone()
        return Session.from_json(row[0]) if row else None

    def route_request(self, call_id: str) -> dict[str, Any] | None:
        with self.db.reading() as conn:
            row = conn.execute("SELECT request FROM route_requests WHERE call_id=%s",
                               (call_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def events(self, call_id: str) -> list[dict[str, Any]]:
        with self.db.reading() as conn:
            rows = conn.execute("SELECT data FROM events WHERE call_id=%s ORDER BY id",
                                (call_id,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def sessions_since(self, since: float, until: float = math.inf) -> list[Session]:
        with self.db.reading() as conn:
            rows = conn.execute("SELECT session FROM sessions WHERE updated_at >= %s AND "
                                "updated_at < %s ORDER BY updated_at",
                                (since, until)).fetchall()
        return [Session.from_json(r[0]) for r in rows]

    def ping(self) -> None:
        try:
            with self.db.reading() as conn:
                conn.execute("SELECT 1 FROM sessions LIMIT 1").fetchall()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"call store {_redact(self.db.url)} is not usable: {exc}") from None


# ------------------------------------------------------------------ small tables


class _Result:
    """A statement's rows (fetched before its connection went back to the pool)."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows, self.rowcount = rows, rowcount

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return self._rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class _Statements:
    """One statement at a time with ``?`` placeholders, in the thread's open transaction
    (a routing update's) or in its own: what the SQL tables shared with SQLite (the
    outbox, users, floor events) need of a connection."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def execute(self, sql: str, params: Any = ()) -> _Result:
        with self.db.transaction() as conn:
            cur = conn.execute(sql.replace("?", "%s"), params)
            return _Result(cur.fetchall() if cur.description else [], cur.rowcount)

    def executemany(self, sql: str, rows: Any) -> None:
        with self.db.transaction() as conn, conn.cursor() as cur:
            cur.executemany(sql.replace("?", "%s"), rows)

    def executescript(self, sql: str) -> None:
        """Nothing: PostgreSQL's schema is made by ``ivr db upgrade`` (:data:`MIGRATIONS`)."""


class PostgresConnect:
    """``connect()`` and ``write()`` for :class:`ivr.live.outbox.SqlOutbox`,
    :class:`ivr.users.SqlUserTable` and :class:`ivr.floor.SqlFloorLog` on PostgreSQL."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    def __call__(self) -> _Statements:
        return _Statements(self.db)

    @contextmanager
    def write(self) -> Iterator[_Statements]:
        """One transaction for the statements run in it."""
        with self.db.transaction():
            yield _Statements(self.db)

    @contextmanager
    def write_flows(self) -> Iterator[_Statements]:
        """A transaction that holds the flow versions' lock: two hosts saving or
        publishing at once take turns (a version number is read, then written)."""
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (FLOWS_LOCK,))
            yield _Statements(self.db)


# ------------------------------------------------------------------ routing


class PostgresRoutingDB:
    """The routing journal's lock in PostgreSQL: a transaction-scoped advisory lock."""

    def __init__(self, db: PostgresDatabase) -> None:
        self.db = db

    @contextmanager
    def locked(self) -> Iterator[_Sql]:
        with self.db.transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (ROUTER_LOCK,))
            yield _Sql(conn)

    @contextmanager
    def locked_reading(self, sql: str, params: Any) -> Iterator[tuple[_Sql, list[Any]]]:
        """The lock and the read in one round trip (a pipeline: the read is a separate
        statement, so it sees what the lock's previous holder committed)."""
        with self.db.transaction() as conn:
            with conn.pipeline():
                conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (ROUTER_LOCK,))
                cur = conn.execute(sql.replace("?", "%s"), params)
            yield _Sql(conn), cur.fetchall()

    def batch(self, conn: Any) -> AbstractContextManager[Any]:
        """The update's inserts in one round trip."""
        return conn.conn.pipeline()  # type: ignore[no-any-return]

    @contextmanager
    def reading(self) -> Iterator[_Sql]:
        with self.db.reading() as conn:
            yield _Sql(conn)
