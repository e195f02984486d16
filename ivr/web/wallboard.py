"""The supervisor wallboard (``/wallboard``): per queue, live over Server-Sent Events,
waiting calls, longest wait, today's service level against target, ASA, abandonment,
agents by state and alerts from the policy's thresholds; the agents with their state and
time in state; any call's routing explanation; the day's charts per interval."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template

from ivr.logs import redact
from ivr.web.auth import require_role
from ivr.web.desktop import explain_lines, ivr_path
from ivr.web.live import Floor, sse_headers
from routing import RoutingPolicy

bp = Blueprint("wallboard", __name__)


def _policy() -> RoutingPolicy:
    return current_app.extensions["ivr.routing"].state.query(  # type: ignore[no-any-return]
        lambda r: r.policy)


@bp.get("/wallboard")
@require_role("supervisor")
def page() -> Any:
    return render_template("wallboard.html", policy=_policy())


def alerts(queue: str, stats: dict[str, Any], policy: RoutingPolicy) -> list[str]:
    """The queue's thresholds of ``policy.floor.alerts`` that ``stats`` crosses."""
    a, spec = policy.floor.alerts, policy.queues[queue]
    out = []
    if a.waiting is not None and stats["waiting"] >= a.waiting:
        out.append(f"{stats['waiting']} calls waiting (alert at {a.waiting})")
    if a.longest_wait_seconds is not None and stats["longest_wait"] >= a.longest_wait_seconds:
        out.append(f"longest wait {stats['longest_wait']:.0f} s "
                   f"(alert at {a.longest_wait_seconds:.0f} s)")
    sl = stats["service_level"]
    if a.service_level_below_target and sl is not None and sl < spec.service_level.target:
        out.append(f"service level {sl:.0%} under target {spec.service_level.target:.0%}")
    rate = stats["abandonment_rate"]
    if a.abandon_rate_above is not None and rate is not None and rate > a.abandon_rate_above:
        out.append(f"abandon rate {rate:.0%} over {a.abandon_rate_above:.0%}")
    return out


def board(floor: Floor, policy: RoutingPolicy) -> dict[str, Any]:
    """Everything the wallboard shows, from one picture of the router."""
    queues = []
    for name, stats in sorted(floor.queues.items()):
        spec = policy.queues[name]
        staffed = [a for a in floor.agents.values()
                   if all(s in a["skills"] for s in spec.skills)]
        by_state: dict[str, int] = {}
        for a in staffed:
            by_state[a["state"]] = by_state.get(a["state"], 0) + 1
        waiting = [c["enqueued_at"] for c in floor.calls.values()
                   if c["queue"] == name and c["state"] in ("waiting", "reserved")]
        queues.append({
            "queue": name, "waiting": stats["waiting"],
            "oldest_enqueued_at": min(waiting) if waiting else None,
            "service_level": stats["service_level"], "target": spec.service_level.target,
            "threshold_seconds": spec.service_level.threshold_seconds,
            "asa_seconds": stats["average_wait"], "abandon_rate": stats["abandonment_rate"],
            "offered": stats["offered"], "answered": stats["answered"],
            "abandoned": stats["abandoned"], "agents": by_state,
            "alerts": alerts(name, stats, policy)})
    agents = [{k: a[k] for k in ("id", "name", "state", "state_since")}
              | {"calls": sorted(a["calls"])} for a in sorted(floor.agents.values(),
                                                              key=lambda a: a["id"])]
    calls = [{k: c[k] for k in ("id", "queue", "state", "agent_id", "enqueued_at",
                                "answered_at", "priority")}
             | {"intent": c["context"].get("intent")}
             for c in sorted(floor.calls.values(), key=lambda c: c["enqueued_at"])]
    return {"queues": queues, "agents": agents, "calls": calls}


@bp.get("/wallboard/events")
@require_role("supervisor")
def events() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    policy = _policy()
    hub = app.extensions["ivr.live"]

    def full(view: dict[str, Any]) -> dict[str, Any]:
        return {**view, "now": app.extensions["ivr.clock"]().timestamp()}

    return Response(hub.stream(lambda f: board(f, policy), enrich=full),
                    mimetype="text/event-stream", headers=sse_headers())


@bp.get("/wallboard/state")
@require_role("supervisor")
def state() -> Any:
    floor = current_app.extensions["ivr.live"].current()
    now = current_app.extensions["ivr.clock"]().timestamp()
    return jsonify({**board(floor, _policy()), "now": now})


@bp.get("/wallboard/calls/<call_id>")
@require_role("supervisor")
def call(call_id: str) -> Any:
    """A call's routing explanation (as ``ivr route explain`` prints it) and IVR path."""
    routing = current_app.extensions["ivr.routing"]
    lines = explain_lines(routing, call_id)
    if not lines:
        return jsonify(error=f"no routing decisions for call {call_id}"), 404
    context = routing.state.query(
        lambda r: dict(r.calls[call_id].context) if call_id in r.calls else None)
    return jsonify(call_id=call_id, explain=lines,
                   path=ivr_path(current_app.extensions["ivr.store"], call_id),
                   context=redact(context) if context is not None else None)


@bp.get("/wallboard/intervals")
@require_role("supervisor")
def intervals() -> Any:
    """Today's calls per 30-minute interval (offered, answered, abandoned, service level),
    in the contact center's time zone."""
    from ivr.report import day_intervals, facts_for

    routing = current_app.extensions["ivr.routing"]
    now: dt.datetime = current_app.extensions["ivr.clock"]()
    facts = facts_for(current_app, now, now)
    return jsonify(intervals=day_intervals(facts, now, routing.timezone, _policy()))
