"""Admission control: at most a few requests that change something run at once in a
worker process; the rest wait for a slot before they start.

A worker's request threads share one interpreter lock, and nearly every webhook and API
write also waits for the store's write lock. With many of them running at once, the
thread holding the write lock waited its turn for the interpreter among all the others,
held the write lock longer, and every writer of every process waited longer behind it:
``scripts/bench_live.py`` (SQLite, 1,000 agents, 2 workers) served 228-253 req/s with
32 clients against 357-401 with 16. With at most four at a time per worker, 32 clients
got 429-463 req/s; two at a time did better still at 16 clients (657-680 req/s against
571-576 with four and 525-640 with no limit, in one sitting), and one no better than two
with a longer tail (p99 83-84 ms against 70-73), as a worker then cannot compute while
its one request waits for the write lock.

Reads (GET, HEAD, OPTIONS) are never held back: pages and their live streams, which keep a
thread each for as long as they are open, do not take slots. A request that waited
``WAIT_S`` for a slot runs anyway, so the limit can delay a webhook, never fail it.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)
#: Longest a request waits for a slot before it runs regardless (Twilio waits 15 s).
WAIT_S = 5.0
#: Requests that never take a slot.
READS = frozenset({"GET", "HEAD", "OPTIONS"})

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class FairSlots:
    """A counting semaphore that serves waiters in arrival order: a freed slot is handed
    to the longest waiter, never taken by a request that just arrived (Python's
    ``threading.Semaphore`` lets newcomers overtake, which lengthened the slowest
    requests' waits)."""

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            granted = threading.Event()
            self._waiters.append(granted)
        if granted.wait(timeout):
            return True
        with self._lock:
            if granted.is_set():  # handed over just as the wait ended
                return True
            self._waiters.remove(granted)
            return False

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # the slot passes straight to them
            else:
                self._free += 1


class ActiveLimit:
    """WSGI middleware: at most ``limit`` writes running at once in this process."""

    def __init__(self, app: WSGIApp, limit: int, wait_s: float = WAIT_S) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.app = app
        self.limit = limit
        self.wait_s = wait_s
        self._slots = FairSlots(limit)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") in READS:
            return self.app(environ, start_response)
        got = self._slots.acquire(timeout=self.wait_s)
        if not got:
            log.warning("no request slot free; running anyway",
                        extra={"path": environ.get("PATH_INFO"), "waited_s": self.wait_s})
        try:
            body = self.app(environ, start_response)
            try:
                return list(body)  # made inside the slot; written to the client after it
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
        finally:
            if got:
                self._slots.release()
