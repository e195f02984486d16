"""Admission control (ivr.web.admission): writes take one of a few slots per worker,
reads never wait, and a write that waited too long runs anyway."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ivr.errors import IVRError
from ivr.web.admission import ActiveLimit, FairSlots
from ivr.web.settings import Settings


class SlowApp:
    """A WSGI app that counts how many of its calls run at once."""

    def __init__(self, gate: threading.Event | None = None, pause_s: float = 0.03) -> None:
        self.running = self.most = 0
        self.closed = 0
        self.gate, self.pause_s = gate, pause_s
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.gate is not None and environ["REQUEST_METHOD"] == "POST":
                self.gate.wait(10)
            time.sleep(self.pause_s)
        finally:
            with self._lock:
                self.running -= 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        app = self

        class Body(list):
            def close(self) -> None:
                app.closed += 1

        return Body([b"ok"])


def call(app, method: str = "POST") -> bytes:
    return b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/voice/step"},
                        lambda status, headers: None))


def test_no_more_writes_run_at_once_than_the_limit_and_every_body_is_closed():
    inner = SlowApp()
    app = ActiveLimit(inner, limit=3)
    with ThreadPoolExecutor(12) as pool:
        assert list(pool.map(lambda _: call(app), range(36))) == [b"ok"] * 36
    assert inner.most == 3
    assert inner.closed == 36


def test_slots_go_to_waiters_in_the_order_they_came():
    slots = FairSlots(1)
    assert slots.acquire(1)
    order: list[int] = []

    def waiter(k: int) -> None:
        assert slots.acquire(5)
        order.append(k)
        slots.release()

    threads = []
    for k in range(6):
        threads.append(threading.Thread(target=waiter, args=(k,)))
        threads[-1].start()
        time.sleep(0.02)  # each waits before the next comes
    slots.release()
    for t in threads:
        t.join(5)
    assert order == list(range(6))
    assert slots.acquire(0)  # and the slot is free again at the end


def test_reads_never_wait_for_a_slot():
    gate = threading.Event()
    inner = SlowApp(gate, pause_s=0)
    app = ActiveLimit(inner, limit=1)
    writer = threading.Thread(target=call, args=(app,))
    writer.start()
    time.sleep(0.05)  # the write holds the only slot until the gate opens
    t0 = time.monotonic()
    assert call(app, "GET") == b"ok"
    assert time.monotonic() - t0 < 1.0
    gate.set()
    writer.join(5)


def test_a_write_that_waited_too_long_runs_anyway():
    gate = threading.Event()
    inner = SlowApp(gate, pause_s=0)
    app = ActiveLimit(inner, limit=1, wait_s=0.2)
    writer = threading.Thread(target=call, args=(app,))
    writer.start()
    time.sleep(0.05)
    done: list[bytes] = []
    late = threading.Thread(target=lambda: done.append(call(app)))
    t0 = time.monotonic()
    late.start()
    time.sleep(0.5)
    gate.set()  # the late write waits at the gate too: it ran without a slot
    late.join(5)
    writer.join(5)
    assert done == [b"ok"] and inner.most == 2 and time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("value", ["0", "-1", "four", "2.5"])
def test_a_bad_limit_is_refused_naming_the_variable(value):
    with pytest.raises(IVRError, match="IVR_ACTIVE_REQUESTS"):
        Settings.from_env({"IVR_ACTIVE_REQUESTS": value})


def test_the_limit_comes_from_the_environment():
    assert Settings.from_env({}).active_requests == 2
    assert Settings.from_env({"IVR_ACTIVE_REQUESTS": "8"}).active_requests == 8


def test_batch_scheduling_is_a_yes_no_setting():
    assert Settings.from_env({}).batch_scheduling is True
    assert Settings.from_env({"IVR_BATCH_SCHEDULING": "0"}).batch_scheduling is False
    with pytest.raises(IVRError, match="IVR_BATCH_SCHEDULING"):
        Settings.from_env({"IVR_BATCH_SCHEDULING": "sometimes"})
