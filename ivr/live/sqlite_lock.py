"""One writer at a time on an SQLite store, queued instead of polling.

SQLite lets one connection write at a time and makes the others retry through its busy
handler, which sleeps 1, 2, 5 ... up to 100 ms between tries and favours nobody: under
load (two gunicorn workers with dozens of threads each, every call step a write) a
request can lose the race again and again, and the 99th percentile of the call path
climbed to 0.8 s while the median was 10 ms (``scripts/bench_live.py``).

:class:`WriteLock` puts writers in line before ``BEGIN IMMEDIATE``: the threads of a
process wait on a lock the kernel wakes at once, and the one thread per process at the
head of that line takes an advisory ``flock`` on ``<store>.writelock``, blocking in the
kernel, which wakes it the moment the other process lets go. (Polling for it instead, as
this did until 2026-12, left the lock idle for up to the poll interval at every hand-over
between processes and spent the waiting process's CPU: ``scripts/bench_live.py``, SQLite,
1,000 agents, 444-519 -> 548-599 req/s in one sitting.) The head's wait is bounded by the
holder's: a holder runs one transaction, which does no network and whose ``BEGIN`` waits
at most SQLite's busy timeout for a writer outside this lock; the other threads of the
process give up after their timeout (:class:`WriteLockTimeout`, a store error, and the
caller's safe path). SQLite's own lock is then almost always free when the transaction
begins; its busy handler remains the safety net for a writer that does not take this lock
(the ``ivr`` commands run beside a server). The lock file is released by the kernel when a
process dies, so a killed worker never wedges the others.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class WriteLockTimeout(sqlite3.OperationalError):
    """The store stayed locked by other writers for longer than the wait allowed."""


class WriteLock:
    """Writers of one SQLite file, in line across the threads and processes of a host."""

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}.writelock")
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0
        self._local = threading.local()

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # a forked worker opens its own
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    @contextmanager
    def held(self, timeout_s: float) -> Iterator[None]:
        """Hold the write lock (re-entrant per thread); :class:`WriteLockTimeout` when
        another thread of this process holds or waits for it longer than ``timeout_s``."""
        depth = getattr(self._local, "depth", 0)
        if depth:
            self._local.depth = depth + 1
            try:
                yield
            finally:
                self._local.depth -= 1
            return
        if not self._threads.acquire(timeout=max(timeout_s, 0.0)):
            raise WriteLockTimeout(f"database is locked (waited {timeout_s:g} s in this process)")
        try:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)  # the GIL is released while it blocks
            self._local.depth = 1
            try:
                yield
            finally:
                self._local.depth = 0
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


_LOCKS: dict[str, WriteLock] = {}
_LOCKS_GUARD = threading.Lock()


def write_lock(path: Path) -> WriteLock:
    """The one :class:`WriteLock` of this SQLite file in this process."""
    key = str(Path(path).resolve())
    with _LOCKS_GUARD:
        lock = _LOCKS.get(key)
        if lock is None:
            lock = _LOCKS[key] = WriteLock(Path(path))
        return lock


class LockedConnection(sqlite3.Connection):
    """A store connection that knows its file's :class:`WriteLock` (``write_lock``) and
    how long a writer may wait (``busy_s``)."""

    write_lock: WriteLock | None = None
    busy_s: float = 10.0


@contextmanager
def immediate(conn: sqlite3.Connection, timeout_s: float | None = None
              ) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on ``conn`` in line with the other writers
    (``ROLLBACK`` and re-raise on any error). A connection that is not a
    :class:`LockedConnection` relies on SQLite's busy handler alone."""
    lock = getattr(conn, "write_lock", None)
    wait = timeout_s if timeout_s is not None else getattr(conn, "busy_s", 10.0)
    held = lock.held(wait) if lock is not None else _nothing()
    with held:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise


@contextmanager
def _nothing() -> Iterator[None]:
    yield
