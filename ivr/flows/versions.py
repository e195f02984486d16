"""Flow versions in the store: immutable versions, drafts, what is live, and an audit log.

Every version keeps who made it, when, why (a message), its YAML text and the text's
hash; a database trigger refuses any change to a stored version. One version per flow
is live (the one new calls start on); publishing and rolling back only move that
pointer, inside one transaction, and each move is written to the audit log. A draft is
a text being edited: it never serves a caller.

The tables live in the call store's database: its SQLite file (``var/ivr.sqlite3``), so
every worker process and the ``ivr flows`` commands see the same history, or PostgreSQL
(:meth:`VersionStore.on`, schema by ``ivr db upgrade``), so that a flow published on one
host goes live on all of them. ``VersionStore(":memory:")`` keeps them in this process
only (tests, ``IVR_STORE=memory``).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from ivr.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_versions (
    flow_id    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    filename   TEXT NOT NULL,
    author     TEXT NOT NULL,
    created_at REAL NOT NULL,
    message    TEXT NOT NULL,
    text       TEXT NOT NULL,
    PRIMARY KEY (flow_id, version)
);
CREATE TRIGGER IF NOT EXISTS flow_versions_immutable BEFORE UPDATE ON flow_versions
BEGIN SELECT RAISE(ABORT, 'flow versions are immutable'); END;
CREATE TRIGGER IF NOT EXISTS flow_versions_kept BEFORE DELETE ON flow_versions
BEGIN SELECT RAISE(ABORT, 'flow versions are immutable'); END;
CREATE TABLE IF NOT EXISTS flow_live (
    flow_id      TEXT PRIMARY KEY,
    version      INTEGER NOT NULL,
    published_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_drafts (
    flow_id    TEXT PRIMARY KEY,
    text       TEXT NOT NULL,
    author     TEXT NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_audit (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id TEXT NOT NULL,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    version INTEGER,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS flow_audit_by_flow ON flow_audit (flow_id, id);
"""


def text_hash(text: str) -> str:
    """The hash a version is known by: SHA-256 of its UTF-8 text, 16 hex digits."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class FlowVersion:
    """One immutable version of a flow's YAML."""

    flow_id: str
    version: int
    hash: str
    filename: str
    author: str
    created_at: float
    message: str
    text: str


@dataclass(frozen=True)
class Draft:
    flow_id: str
    text: str
    author: str
    updated_at: float


class VersionStore:
    """Flow versions, drafts, the live pointer and the audit log in the store's database."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 10.0) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._timeout = busy_timeout_s
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._connect: Callable[[], Any] | None = None
        self._transaction: Callable[[], Any] | None = None
        with self._locked() as conn:
            conn.executescript(SCHEMA)

    @classmethod
    def on(cls, connect: Callable[[], Any], write: Callable[[], Any],
           where: str) -> VersionStore:
        """The tables in another database: ``connect()`` runs statements with ``?``
        placeholders, ``write()`` opens a transaction
        (:class:`ivr.live.postgres.PostgresConnect`, whose schema ``ivr db upgrade`` makes)."""
        self = cls.__new__(cls)
        self.path, self._lock = where, threading.RLock()
        self._connect, self._transaction = connect, write
        return self

    @contextmanager
    def _locked(self) -> Iterator[Any]:
        """This process's connection, one thread at a time (nothing here is on a
        webhook's path: the studio, the CLI and the reload thread use it)."""
        if self._connect is not None:
            yield self._connect()
            return
        with self._lock:
            if self._conn is None or self._pid != os.getpid():
                try:
                    conn = sqlite3.connect(self.path, isolation_level=None,
                                           timeout=self._timeout, check_same_thread=False)
                    if self.path != ":memory:":
                        conn.execute("PRAGMA journal_mode=WAL")
                    conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
                except sqlite3.Error as exc:
                    raise StoreError(f"cannot open the flow store {self.path}: {exc}") from exc
                self._conn, self._pid = conn, os.getpid()
            yield self._conn

    @contextmanager
    def _write(self) -> Iterator[Any]:
        if self._transaction is not None:
            with self._lock, self._transaction() as conn:
                yield conn
            return
        with self._locked() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -------------------------------------------------------------- versions

    def record(self, flow_id: str, filename: str, text: str, author: str, message: str,
               now: float) -> FlowVersion:
        """Store ``text`` as the flow's next version (or return the latest version when
        its text is the same); the caller has validated it."""
        digest = text_hash(text)
        with self._write() as conn:
            row = conn.execute("SELECT * FROM flow_versions WHERE flow_id=? "
                               "ORDER BY version DESC LIMIT 1", (flow_id,)).fetchone()
            if row is not None and row[2] == digest:
                return FlowVersion(*row)
            number = (row[1] if row is not None else 0) + 1
            conn.execute("INSERT INTO flow_versions VALUES (?,?,?,?,?,?,?,?)",
                         (flow_id, number, digest, filename, author, now, message, text))
            conn.execute("INSERT INTO flow_audit (flow_id, at, actor, action, version, message)"
                         " VALUES (?,?,?,?,?,?)", (flow_id, now, author, "save", number, message))
        return FlowVersion(flow_id, number, digest, filename, author, now, message, text)

    def adopt(self, flow_id: str, filename: str, text: str, author: str, message: str,
              now: float) -> FlowVersion | None:
        """Store and publish ``text`` in one transaction unless the flow already has a
        version with this text (then None): how files become versions, safe when several
        worker processes start at once."""
        digest = text_hash(text)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM flow_versions WHERE flow_id=? AND hash=?",
                            (flow_id, digest)).fetchone() is not None:
                return None
            row = conn.execute("SELECT MAX(version) FROM flow_versions WHERE flow_id=?",
                               (flow_id,)).fetchone()
            number = (row[0] or 0) + 1
            conn.execute("INSERT INTO flow_versions VALUES (?,?,?,?,?,?,?,?)",
                         (flow_id, number, digest, filename, author, now, message, text))
            conn.execute("INSERT INTO flow_live VALUES (?,?,?) ON CONFLICT(flow_id) DO UPDATE "
                         "SET version=excluded.version, published_at=excluded.published_at",
                         (flow_id, number, now))
            conn.executemany(
                "INSERT INTO flow_audit (flow_id, at, actor, action, version, message) "
                "VALUES (?,?,?,?,?,?)", [(flow_id, now, author, action, number, message)
                                         for action in ("save", "publish")])
        return FlowVersion(flow_id, number, digest, filename, author, now, message, text)

    def get(self, flow_id: str, version: int) -> FlowVersion | None:
        with self._locked() as conn:
            row = conn.execute("SELECT * FROM flow_versions WHERE flow_id=? AND version=?",
                               (flow_id, version)).fetchone()
        return FlowVersion(*row) if row else None

    def with_hash(self, flow_id: str, digest: str) -> FlowVersion | None:
        """The earliest version of the flow whose text has this hash."""
        with self._locked() as conn:
            row = conn.execute("SELECT * FROM flow_versions WHERE flow_id=? AND hash=? "
                               "ORDER BY version LIMIT 1", (flow_id, digest)).fetchone()
        return FlowVersion(*row) if row else None

    def flow_ids(self) -> list[str]:
        with self._locked() as conn:
            rows = conn.execute("SELECT DISTINCT flow_id FROM flow_versions ORDER BY flow_id")
            return [r[0] for r in rows]

    # -------------------------------------------------------------- live

    def publish(self, flow_id: str, version: int, actor: str, now: float,
                action: str = "publish", message: str = "") -> None:
        """Make ``version`` the one new calls of the flow start on, atomically, and log it."""
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM flow_versions WHERE flow_id=? AND version=?",
                            (flow_id, version)).fetchone() is None:
                raise StoreError(f"flow '{flow_id}' has no version {version}")
            conn.execute("INSERT INTO flow_live VALUES (?,?,?) ON CONFLICT(flow_id) DO UPDATE "
                         "SET version=excluded.version, published_at=excluded.published_at",
                         (flow_id, version, now))
            conn.execute("INSERT INTO flow_audit (flow_id, at, actor, action, version, message)"
                         " VALUES (?,?,?,?,?,?)", (flow_id, now, actor, action, version, message))

    def live(self) -> dict[str, FlowVersion]:
        """The live version of every flow, by id."""
        with self._locked() as conn:
            rows = conn.execute("SELECT v.* FROM flow_live l JOIN flow_versions v "
                                "ON v.flow_id=l.flow_id AND v.version=l.version").fetchall()
        return {r[0]: FlowVersion(*r) for r in rows}

    def live_stamp(self) -> tuple[tuple[str, int, float], ...]:
        """A cheap fingerprint of what is live (changes on every publish and rollback)."""
        with self._locked() as conn:
            rows = conn.execute("SELECT flow_id, version, published_at FROM flow_live "
                                "ORDER BY flow_id").fetchall()
        return tuple((r[0], r[1], r[2]) for r in rows)

    # -------------------------------------------------------------- history

    def history(self, flow_id: str) -> list[dict[str, Any]]:
        """Every version, newest first: ``{version, hash, author, created_at, published_at,
        message, live}`` (``published_at``: when it last went live, else None)."""
        with self._locked() as conn:
            rows = conn.execute(
                "SELECT v.version, v.hash, v.author, v.created_at, v.message, "
                "(SELECT MAX(a.at) FROM flow_audit a WHERE a.flow_id=v.flow_id AND "
                " a.version=v.version AND a.action IN ('publish','rollback')), "
                "(SELECT l.version FROM flow_live l WHERE l.flow_id=v.flow_id) "
                "FROM flow_versions v WHERE v.flow_id=? ORDER BY v.version DESC",
                (flow_id,)).fetchall()
        return [{"version": r[0], "hash": r[1], "author": r[2], "created_at": r[3],
                 "published_at": r[5], "message": r[4], "live": r[0] == r[6]} for r in rows]

    def audit(self, flow_id: str) -> list[dict[str, Any]]:
        """The flow's audit log, oldest first: ``{at, actor, action, version, message}``."""
        with self._locked() as conn:
            rows = conn.execute("SELECT at, actor, action, version, message FROM flow_audit "
                                "WHERE flow_id=? ORDER BY id", (flow_id,)).fetchall()
        return [{"at": r[0], "actor": r[1], "action": r[2], "version": r[3], "message": r[4]}
                for r in rows]

    def log(self, flow_id: str, actor: str, action: str, now: float, message: str = "",
            version: int | None = None) -> None:
        """Add an audit record that moves nothing (e.g. a refused publish)."""
        with self._write() as conn:
            conn.execute("INSERT INTO flow_audit (flow_id, at, actor, action, version, message)"
                         " VALUES (?,?,?,?,?,?)", (flow_id, now, actor, action, version, message))

    # -------------------------------------------------------------- drafts

    def save_draft(self, flow_id: str, text: str, author: str, now: float) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO flow_drafts VALUES (?,?,?,?) ON CONFLICT(flow_id) DO "
                         "UPDATE SET text=excluded.text, author=excluded.author, "
                         "updated_at=excluded.updated_at", (flow_id, text, author, now))

    def draft(self, flow_id: str) -> Draft | None:
        with self._locked() as conn:
            row = conn.execute("SELECT * FROM flow_drafts WHERE flow_id=?",
                               (flow_id,)).fetchone()
        return Draft(*row) if row else None

    def drop_draft(self, flow_id: str) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM flow_drafts WHERE flow_id=?", (flow_id,))


def version_dict(v: FlowVersion) -> dict[str, Any]:
    """A version as JSON-able data, without its text."""
    out = asdict(v)
    out.pop("text")
    return out
