"""Live updates for the pages: one watcher thread per process, many Server-Sent Event
streams.

The watcher reads the shared routing state every ``interval`` seconds while at least one
page listens (one cheap query per process, whatever the number of pages: the router
state is cached and reloaded only when another process changed it), turns it into a
:class:`Floor` picture and, when agents or calls changed, wakes every stream. Each
stream then computes its own view (an agent's own offers, or the wallboard) and sends it
only if it differs from what that page last got. Browsers never poll.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from routing import Router

log = logging.getLogger(__name__)
#: A comment line this often keeps proxies from closing an idle stream, and notices a
#: page that went away.
KEEPALIVE_S = 15.0
#: A stream ends after this long; the browser's EventSource reconnects by itself.
STREAM_S = 600.0


@dataclass(frozen=True)
class Floor:
    """The router as the pages see it, at ``time`` (epoch seconds)."""

    time: float
    agents: dict[str, dict[str, Any]]
    calls: dict[str, dict[str, Any]]
    queues: dict[str, dict[str, Any]]
    version: int = 0
    floor_events: int = 0  # grows with every hold, transfer or disposition


def picture(router: Router, now: float, floor_events: int = 0) -> Floor:
    """Agents, calls and queue statistics, as plain data (read under the state's lock)."""
    agents = {a.id: {"id": a.id, "name": a.name, "state": a.state.value,
                     "presence": a.presence.value, "state_since": a.state_since,
                     "skills": dict(a.skills), "languages": sorted(a.languages),
                     "calls": {c: s.value for c, s in a.slots.items()},
                     "wrap_until": dict(a.wrap_until)}
              for a in router.agents.values()}
    calls = {c.id: {"id": c.id, "queue": c.queue, "state": c.state.value,
                    "agent_id": c.agent_id, "priority": c.priority, "skills": dict(c.skills),
                    "language": c.language, "enqueued_at": c.enqueued_at,
                    "offered_at": c.offered_at, "answered_at": c.answered_at,
                    "context": c.context}
             for c in router.calls.values()}
    queues = {q: router.stats(q, now).as_dict() for q in router.policy.queues}
    return Floor(now, agents, calls, queues, floor_events=floor_events)


@dataclass(eq=False)
class _Listener:
    """One open stream: its view of the floor and the last one it was given."""

    view: Callable[[Floor], Any]
    key: str = ""
    pending: Any = None
    wake: threading.Event = field(default_factory=threading.Event)

    def offer(self, floor: Floor) -> None:
        """Hand the stream this floor's view if it differs from its last (and wake it)."""
        cheap = self.view(floor)
        key = json.dumps(cheap, default=str, sort_keys=True)
        if key != self.key:
            self.key, self.pending = key, cheap
            self.wake.set()


@dataclass
class Hub:
    """The per-process watcher and the streams waiting on it. The watcher computes each
    stream's view and wakes only the streams whose view changed (an offer wakes one
    desktop, not all of them)."""

    read: Callable[[float], Floor]  # the current Floor at a time
    interval: float = 0.2
    floor: Floor | None = None
    _fingerprint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _listeners: set[_Listener] = field(default_factory=set)
    _thread: threading.Thread | None = None
    _pid: int = 0

    def current(self) -> Floor:
        """The latest picture (read now if the watcher is not running)."""
        if self.floor is None or self._thread is None:
            self.refresh()
        assert self.floor is not None
        return self.floor

    def refresh(self) -> bool:
        """Read the state; True (and changed streams woken) if agents, calls, counters or
        floor events changed."""
        floor = self.read(time.time())
        counters = {q: (s["offered"], s["answered"], s["abandoned"], s["waiting"])
                    for q, s in floor.queues.items()}
        fingerprint = json.dumps([floor.agents, floor.calls, counters, floor.floor_events],
                                 sort_keys=True, default=str)
        with self._lock:
            changed = fingerprint != self._fingerprint
            version = (self.floor.version if self.floor else 0) + int(changed)
            self.floor = Floor(floor.time, floor.agents, floor.calls, floor.queues, version,
                               floor.floor_events)
            if changed:
                self._fingerprint = fingerprint
                for listener in self._listeners:
                    listener.offer(self.floor)
        return changed

    def poke(self) -> None:
        """Something changed here (an agent clicked): look now, not at the next tick."""
        try:
            self.refresh()
        except Exception:
            log.exception("live refresh failed")

    def _ensure_thread(self) -> None:
        import os

        if self._thread is not None and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._watch, name="ivr-live", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while True:
            time.sleep(self.interval)
            if not self._listeners:
                continue
            try:
                self.refresh()
            except Exception:
                log.exception("live refresh failed; trying again")

    def stream(self, view: Callable[[Floor], Any], event: str = "update",
               enrich: Callable[[Any], Any] | None = None) -> Iterator[str]:
        """SSE lines: ``enrich(view(floor))`` whenever ``view(floor)`` changes (a cheap
        view decides; ``enrich`` adds what costs a query, only then), keep-alive comments
        in between."""
        listener = _Listener(view)
        floor = self.current()
        with self._lock:
            listener.offer(self.floor or floor)
            self._listeners.add(listener)
        self._ensure_thread()
        try:
            yield "retry: 1000\n\n"
            started = time.monotonic()
            while time.monotonic() - started < STREAM_S:
                if listener.wake.wait(KEEPALIVE_S):
                    with self._lock:
                        listener.wake.clear()
                        cheap = listener.pending
                    full = enrich(cheap) if enrich else cheap
                    yield f"event: {event}\ndata: {json.dumps(full, default=str)}\n\n"
                else:
                    yield ": keep-alive\n\n"
        finally:
            with self._lock:
                self._listeners.discard(listener)


def sse_headers() -> dict[str, str]:
    return {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
