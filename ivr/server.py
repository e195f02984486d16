"""``ivr serve``: the app under gunicorn, a production WSGI server with worker processes."""

from __future__ import annotations

import logging
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from ivr.flows.registry import FlowRegistry
from ivr.logs import configure_logging
from ivr.web import INSECURE_BANNER, create_app
from ivr.web.settings import Settings, check_tokens

log = logging.getLogger("ivr.server")
#: Request threads per worker process: each open page's Server-Sent Events stream holds one.
THREADS = 64
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
    registry = FlowRegistry.open(settings.flows_dir, settings.default_flow)
    if not settings.validate_signatures:
        bar = "!" * 78
        print(f"{bar}\n{INSECURE_BANNER}\n{bar}", file=sys.stderr, flush=True)
    app = create_app(settings, registry=registry)
    log.info("serving", extra={"bind": f"{host}:{port}", "workers": workers,
                               "flows": sorted(registry.flows), "data_dir": str(settings.data_dir),
                               "store": settings.store})
    _Server(app, {
        "bind": f"{host}:{port}",
        "workers": workers,
        # Threads, not one request per process: a slow client holds one thread while the
        # worker's other threads and its heartbeat go on (see the README's "Slow clients"),
        # and each open page holds a Server-Sent Events stream, so workers x threads bounds
        # the pages served at once.
        "worker_class": "gthread",
        "threads": threads,
        "preload_app": True,  # flows validated once, before any worker forks
        "timeout": WORKER_TIMEOUT_S,  # below Twilio's 15 s webhook budget
        "keepalive": 2,
        "graceful_timeout": 5,
        "loglevel": log_level,
        "accesslog": None,
    }).run()
    return 0
