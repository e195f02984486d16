"""``GET /metrics``: Prometheus' text format (``prometheus-client``), behind the admin token.

Counted as they happen (shared by gunicorn's workers through prometheus-client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, which ``ivr serve`` sets up): webhook and
API latency by route, routing operation latency, Twilio REST failures. Read from the
shared router when scraped (the same in every worker and host): waiting calls and the
longest wait per queue, agents by state, today's service level, average speed of answer
and abandonment per queue, the journal's lag and clock clamps, and the REST outbox's
backlog when the store keeps one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Iterator

from flask import Blueprint, Flask, Response, current_app, g, request

from ivr.web.security import bearer_token_required

bp = Blueprint("metrics", __name__)
log = logging.getLogger("ivr.metrics")
_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1,
            0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_metrics: dict[str, Any] = {}
_made = threading.Lock()


def _m() -> dict[str, Any]:
    """The process's metrics, made on first use (after ``PROMETHEUS_MULTIPROC_DIR`` is set),
    once: a worker's threads may ask at the same moment, and a metric registered twice is an
    error."""
    if _metrics:
        return _metrics
    with _made:
        if _metrics:
            return _metrics
        from prometheus_client import Counter, Histogram

        _metrics.update(
            requests=Histogram("ivr_http_request_seconds", "Webhook and API latency by route",
                               ["route", "method", "status"], buckets=_BUCKETS),
            routing=Histogram("ivr_routing_operation_seconds",
                              "Routing operation time holding the routing lock (journal "
                              "catch-up, the operation, its records)", buckets=_BUCKETS),
            routing_wait=Histogram("ivr_routing_lock_wait_seconds",
                                   "Time a routing operation waited for the routing lock "
                                   "(0 inside a call step, which holds it already)",
                                   buckets=_BUCKETS),
            rest_failures=Counter("ivr_twilio_rest_failures_total",
                                  "Twilio REST requests that failed (redirects, ring-backs)"),
        )
    return _metrics


def observe_routing(seconds: float) -> None:
    _m()["routing"].observe(seconds)


def observe_routing_wait(seconds: float) -> None:
    _m()["routing_wait"].observe(seconds)


def rest_failure() -> None:
    _m()["rest_failures"].inc()


#: The request histogram's series by (route, method, status), looked up once each.
_CHILDREN: dict[tuple[str, str, int], Any] = {}


def install(app: Flask) -> None:
    """Time every request by its route, and register ``/metrics``."""

    @app.before_request
    def _start() -> None:
        g.ivr_started = time.perf_counter()

    @app.after_request
    def _stop(response: Response) -> Response:
        started = g.get("ivr_started")
        if started is not None and request.endpoint != "metrics.metrics":
            route = request.url_rule.rule if request.url_rule is not None else "unmatched"
            try:
                key = (route, request.method, response.status_code)
                child = _CHILDREN.get(key)
                if child is None:
                    child = _CHILDREN[key] = _m()["requests"].labels(
                        route, request.method, str(response.status_code))
                child.observe(time.perf_counter() - started)
            except Exception:  # counting must never turn a caller's answer into a 500
                log.exception("request not counted in /metrics")
        return response

    routing = app.extensions["ivr.routing"]
    routing.state.observe = observe_routing
    routing.state.observe_wait = observe_routing_wait
    routing.on_rest_failure = rest_failure
    app.register_blueprint(bp)


@bp.get("/metrics")
@bearer_token_required("admin_token")
def metrics() -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    _m()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry  # type: ignore[assignment]
    live = CollectorRegistry()
    live.register(_LiveCollector(current_app.extensions["ivr.routing"],
                                 current_app.extensions["ivr.store"],
                                 current_app.extensions["ivr.clock"]))
    body = generate_latest(registry) + generate_latest(live)
    return Response(body, 200, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


class _LiveCollector:
    """Figures read from the shared router when scraped."""

    def __init__(self, routing: Any, store: Any, clock: Callable[[], Any]) -> None:
        self.routing, self.store, self.clock = routing, store, clock

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = self.routing.state
        now = self.clock().timestamp()
        lag = None
        if hasattr(state, "head"):
            lag = max(0, state.head() - state.seq)  # behind before this scrape catches up

        def figures(router: Any) -> tuple[list[Any], dict[str, int]]:
            stats = [router.stats(q, now) for q in sorted(router.policy.queues)]
            agents: dict[str, int] = {}
            for a in router.agents.values():
                agents[a.state.value] = agents.get(a.state.value, 0) + 1
            return stats, agents

        stats, agents = state.query(figures)
        families = {
            "waiting": GaugeMetricFamily("ivr_queue_waiting_calls", "Calls waiting now",
                                         labels=["queue"]),
            "longest": GaugeMetricFamily("ivr_queue_longest_wait_seconds",
                                         "Longest wait of a call in the queue now",
                                         labels=["queue"]),
            "sl": GaugeMetricFamily("ivr_queue_service_level_ratio",
                                    "Service level today (answered within the threshold)",
                                    labels=["queue"]),
            "asa": GaugeMetricFamily("ivr_queue_average_speed_of_answer_seconds",
                                     "Average wait of answered calls today", labels=["queue"]),
            "abandon": GaugeMetricFamily("ivr_queue_abandonment_ratio",
                                         "Abandoned / offered today", labels=["queue"]),
        }
        for s in stats:
            families["waiting"].add_metric([s.queue], s.waiting)
            families["longest"].add_metric([s.queue], s.longest_wait)
            if s.service_level is not None:
                families["sl"].add_metric([s.queue], s.service_level)
            if s.average_wait is not None:
                families["asa"].add_metric([s.queue], s.average_wait)
            if s.abandonment_rate is not None:
                families["abandon"].add_metric([s.queue], s.abandonment_rate)
        yield from families.values()
        by_state = GaugeMetricFamily("ivr_agents", "Agents by state", labels=["state"])
        for name, count in sorted(agents.items()):
            by_state.add_metric([name], count)
        yield by_state
        if lag is not None:
            yield GaugeMetricFamily("ivr_journal_lag_records",
                                    "Routing journal records this worker had not applied yet",
                                    value=lag)
            clamps = state.meta("clock_clamps")
            yield CounterMetricFamily("ivr_journal_clock_clamps",
                                      "Routing commands whose clock was behind the journal's",
                                      value=int(clamps or 0))
        backlog = getattr(self.store, "outbox_backlog", None)
        if callable(backlog):
            yield GaugeMetricFamily("ivr_outbox_backlog", "REST requests not yet sent",
                                    value=backlog())
