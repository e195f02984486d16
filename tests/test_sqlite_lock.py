"""The SQLite store's write lock across threads and processes (ivr.live.sqlite_lock):
one writer at a time, the head of a process's line waiting in the kernel for another
process's writer, the rest of the line giving up after its timeout."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from ivr.live.sqlite_lock import WriteLock, WriteLockTimeout

FORK = multiprocessing.get_context("fork")


def _bump(path: str, times: int) -> None:
    """Threads of one process adding one to a counter file under the lock, slowly."""
    lock = WriteLock(Path(path))
    counter = Path(path + ".n")

    def worker() -> None:
        for _ in range(times):
            with lock.held(30):
                n = int(counter.read_text() or 0)
                time.sleep(0.0005)  # a race, were there no lock, loses updates
                counter.write_text(str(n + 1))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_one_writer_at_a_time_across_threads_and_processes(tmp_path):
    path = str(tmp_path / "ivr.sqlite3")
    Path(path + ".n").write_text("0")
    procs = [FORK.Process(target=_bump, args=(path, 40)) for _ in range(3)]
    for p in procs:
        p.start()
    _bump(path, 40)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert Path(path + ".n").read_text() == str(4 * 3 * 40)


def _hold(path: str, seconds: float, ready) -> None:
    fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ready.set()
    time.sleep(seconds)
    fcntl.flock(fd, fcntl.LOCK_UN)


def _free(path: str) -> bool:
    """Whether another process could take the lock now."""
    fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing the file releases a lock it took
    return True


def _other_process_sees_free(path: str) -> bool:
    with FORK.Pool(1) as pool:
        return pool.apply(_free, (path,))


def test_the_head_waits_for_another_process_and_the_rest_of_its_line_times_out(tmp_path):
    path = str(tmp_path / "ivr.sqlite3")
    lock = WriteLock(Path(path))
    ready = FORK.Event()
    holder = FORK.Process(target=_hold, args=(path, 1.0, ready))
    holder.start()
    assert ready.wait(10)
    t0 = time.monotonic()
    got: list[float] = []

    def head() -> None:
        with lock.held(10):
            got.append(time.monotonic() - t0)
            assert not _free(path)  # really ours while held

    first = threading.Thread(target=head)
    first.start()
    time.sleep(0.1)  # the head of this process's line now waits in the kernel
    with pytest.raises(WriteLockTimeout, match="in this process"):
        with lock.held(0.2):
            pass
    assert time.monotonic() - t0 < 0.9  # gave up on time; the holder still holds
    first.join(10)
    holder.join(10)
    assert got and got[0] >= 0.9  # granted when the holder let go, not before
    assert _other_process_sees_free(path)  # and released after


def test_the_lock_is_reentrant_per_thread_and_waits_in_process(tmp_path):
    lock = WriteLock(tmp_path / "ivr.sqlite3")
    order: list[str] = []
    with lock.held(1):
        with lock.held(1):
            order.append("nested")
        def other_writer() -> None:
            with lock.held(5):
                order.append("other")

        other = threading.Thread(target=other_writer)
        other.start()
        time.sleep(0.1)
        order.append("still mine")
    other.join(5)
    assert order == ["nested", "still mine", "other"]
