"""``ivr serve``: the app under gunicorn, a production WSGI server with worker processes."""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from ivr.flows.registry import FlowRegistry
from ivr.logs import configure_logging
from ivr.web import INSECURE_BANNER, create_app
from ivr.web.admission import ActiveLimit
from ivr.web.settings import Settings, check_tokens

log = logging.getLogger("ivr.server")
#: Request threads per worker process: each open agent desktop or wallboard holds one for
#: its live stream, and a slow client holds one too (``--threads`` changes it).
THREADS = 64
#: The workers' GIL switch interval (Python's default is 0.005 s).
SWITCH_INTERVAL_S = 0.0005
#: A worker silent this long is restarted; kept below Twilio's 15 s webhook budget.
WORKER_TIMEOUT_S = 10


class _Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, app: Any, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.application


def serve(settings: Settings, host: str, port: int, workers: int,
          log_level: str = "info", threads: int = THREADS) -> int:
    """Validate the flows, then serve until stopped. Returns a process exit code."""
    configure_logging(log_level)
    check_tokens(settings)
    _metrics_dir(settings)
    registry = FlowRegistry.open(settings.flows_dir, settings.default_flow)
    if not settings.validate_signatures:
        bar = "!" * 78
        print(f"{bar}\n{INSECURE_BANNER}\n{bar}", file=sys.stderr, flush=True)
    app = create_app(settings, registry=registry)
    # Everything loaded so far (flows, their recognisers, the app) lives as long as the
    # process: out of the collector's sight, a full collection no longer walks it. Measured
    # with gc.callbacks under bench_live: a worker's full collections took 160-180 ms,
    # every thread of the worker stopped meanwhile; 10 ms once frozen. Before the fork,
    # so the workers share these pages rather than copying them as the collector marks.
    gc.collect()
    gc.freeze()
    tune_process(settings)  # once serving is certain: a refused start leaves the caller as is
    app.wsgi_app = ActiveLimit(app.wsgi_app, settings.active_requests)  # type: ignore[method-assign]
    log.info("serving", extra={"bind": f"{host}:{port}", "workers": workers,
                               "flows": sorted(registry.flows), "data_dir": str(settings.data_dir),
                               "store": settings.store})
    _Server(app, {
        "bind": f"{host}:{port}",
        "workers": workers,
        "preload_app": True,  # flows validated once, before any worker forks
        # Threads, not one request per process: a slow client, or an open page's
        # Server-Sent Events stream, holds one thread while the worker's other threads and
        # its heartbeat go on (see the README's "Slow clients"); workers x threads bounds
        # the pages served at once.
        "worker_class": "gthread",
        "threads": threads,
        "timeout": WORKER_TIMEOUT_S,  # below Twilio's 15 s webhook budget
        "keepalive": 2,
        "graceful_timeout": 5,
        "loglevel": log_level,
        "accesslog": None,
        "child_exit": _child_exit,
    }).run()
    return 0


def tune_process(settings: Settings) -> None:
    """Scheduling of the server's processes, inherited by the forked workers.

    - A thread gets the interpreter back within 0.5 ms (not 5) after each database call:
      a thread holding the store's write lock, which every worker waits for, is not left
      waiting behind the other request threads (bench_live, SQLite: 300-318 -> 325-340
      req/s, p99 137-158 -> 115-118 ms).
    - SCHED_BATCH (Linux; ``IVR_BATCH_SCHEDULING=0`` turns it off): a thread the kernel
      wakes (its turn for a request slot, a lock, a socket) no longer preempts the one
      running, which would then sit descheduled while holding the interpreter or the
      store's lock, so the woken thread could not run either. Sampled with
      ``py-spy --gil``, 10 % of the interpreter's time went to handing a freed request
      slot to the next thread; with the policy, bench_live (SQLite, 1,000 agents, 16
      clients, same sitting, 3 rounds each) read 377-405 req/s against 293-357, ratio to
      the baseline 0.43-0.49 against 0.40-0.42. The cost: a woken request waits for the
      running task's time slice (milliseconds) on a busy CPU, well inside any webhook's
      budget. No privilege is needed to choose it.
    """
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    if settings.batch_scheduling and hasattr(os, "SCHED_BATCH"):
        try:
            os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        except OSError as exc:  # a sandbox may refuse it: serve as before
            log.warning("SCHED_BATCH refused; normal scheduling", extra={"error": str(exc)})


def _metrics_dir(settings: Settings) -> None:
    """prometheus-client's multiprocess mode: each worker writes its counts to files in
    one folder, ``/metrics`` adds them up. Set before prometheus-client is imported;
    emptied at start so a restart does not count the last run twice."""
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.db"):
        old.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
