"""The agent and supervisor JSON API (bearer token ``IVR_AGENT_TOKEN``): the roster,
presence, offers (accept/reject), wrap-up, queue statistics and routing decisions."""

from __future__ import annotations

from typing import Any, Callable

from flask import Blueprint, jsonify, request

from ivr.logs import redact
from ivr.web.bodies import AgentBody, StateBody, parse_body
from ivr.web.queueing import AGENT_ID
from ivr.web.security import bearer_token_required, is_admin
from ivr.web.voice import _now, _routing
from routing import Agent, RoutingError

bp = Blueprint("agents", __name__)


def _error(message: str, status: int = 400) -> Any:
    return jsonify(error=message), status


def _apply(change: Callable[[Any], Any], error_status: int | None = None) -> Any:
    """Run a change on the router, apply its effects, answer with its decisions. A routing
    error answers ``error_status``, or by default 404 for an unknown agent and 409 for a
    change the current state does not allow."""
    try:
        result, effects = _routing().apply(change)
    except (RoutingError, TypeError, ValueError) as exc:
        default = 404 if "unknown agent" in str(exc).lower() else 409
        return _error(str(exc), error_status or default)
    _routing().run(effects)
    decisions = result if isinstance(result, list) else []
    return jsonify(decisions=[d.as_dict() for d in decisions])


@bp.get("/agents")
@bearer_token_required("agent_token")
def list_agents() -> Any:
    agents = _routing().state.query(lambda r: [a.as_dict() for a in r.agents.values()])
    return jsonify(agents=agents)


@bp.put("/agents/<agent_id>")
@bearer_token_required("agent_token")
def put_agent(agent_id: str) -> Any:
    """Add an agent, or change their skills, languages, capacity or contact. A contact is
    who gets dialled with the next caller: only an admin sets it."""
    if not AGENT_ID.fullmatch(agent_id):
        return _error("agent id: 1-64 printable characters", 422)
    body = parse_body(AgentBody)
    if body.contact is not None and not is_admin():
        return _error("contact: only an admin (IVR_ADMIN_TOKEN) changes where an agent is "
                      "dialled", 403)
    routing = _routing()
    now = _now().timestamp()

    def change(router: Any) -> Any:
        if agent_id in router.agents:
            decisions = router.update_agent(agent_id, now, skills=body.skills,
                                            languages=body.languages, capacity=body.capacity)
            if body.wrap_up_seconds is not None:
                router.agents[agent_id].wrap_up_seconds = body.wrap_up_seconds
            return decisions
        return router.add_agent(Agent(
            id=agent_id, name=body.name or "", skills=dict(body.skills or {}),
            languages=frozenset(body.languages or ()), capacity=body.capacity or 1,
            wrap_up_seconds=body.wrap_up_seconds), now)

    response = _apply(change, error_status=400)  # a bad field in the request body
    if isinstance(response, tuple):
        return response
    if body.contact:
        routing.state.set_contact(agent_id, body.contact)
    return response


@bp.post("/agents/<agent_id>/state")
@bearer_token_required("agent_token")
def set_state(agent_id: str) -> Any:
    """Log in (available), take a break, or log out (offline)."""
    state = parse_body(StateBody).state
    now = _now().timestamp()
    return _apply(lambda r: r.set_agent_state(agent_id, state, now))


@bp.get("/agents/<agent_id>/offers")
@bearer_token_required("agent_token")
def offers(agent_id: str) -> Any:
    """Calls reserved for this agent, with the context the IVR gathered."""
    def held(router: Any) -> list[dict[str, Any]] | None:
        if agent_id not in router.agents:
            return None
        return [{"call_id": c.id, "queue": c.queue, "state": c.state.value,
                 "skills": dict(c.skills), "language": c.language, "priority": c.priority,
                 "context": redact_caller(c.context)}
                for c in router.calls.values() if c.agent_id == agent_id]

    found = _routing().state.query(held)
    if found is None:
        return _error(f"unknown agent '{agent_id}'", 404)
    return jsonify(offers=found)


def redact_caller(context: dict[str, Any]) -> dict[str, Any]:
    """The agent sees everything the IVR learned, every phone number in it masked (an
    admin may ask for them in clear with ``?unmasked=1``)."""
    if request.args.get("unmasked") == "1" and is_admin():
        return dict(context)
    return redact(dict(context))  # type: ignore[no-any-return]


@bp.post("/agents/<agent_id>/offers/<call_id>/<action>")
@bearer_token_required("agent_token")
def answer_offer(agent_id: str, call_id: str, action: str) -> Any:
    if action not in ("accept", "reject"):
        return _error("action: must be accept or reject", 404)
    routing = _routing()
    try:
        effects = routing.agent_decision(action, call_id, agent_id, _now())
    except RoutingError as exc:
        return _error(str(exc), 409)
    routing.run(effects)
    return jsonify(ok=True, call_id=call_id, action=action)


@bp.post("/agents/<agent_id>/calls/<call_id>/complete")
@bearer_token_required("agent_token")
def complete_call(agent_id: str, call_id: str) -> Any:
    """The conversation is over (for softphones that end calls outside Twilio's Dial):
    the agent goes to wrap-up, then takes the next call."""
    now = _now().timestamp()

    def complete(router: Any) -> Any:
        call = router.calls.get(call_id)
        if call is None or call.agent_id != agent_id:
            raise RoutingError(f"call {call_id} is not with agent '{agent_id}'")
        return router.complete(call_id, now)

    return _apply(complete)


@bp.post("/agents/<agent_id>/wrap-up/end")
@bearer_token_required("agent_token")
def end_wrap_up(agent_id: str) -> Any:
    """Done with after-call work early: ready for the next call."""
    now = _now().timestamp()
    return _apply(lambda r: r.agent_available(agent_id, now))


@bp.get("/queues")
@bearer_token_required("agent_token")
def queues() -> Any:
    now = _now().timestamp()
    return jsonify(queues=_routing().state.query(
        lambda r: {q: r.stats(q, now).as_dict() for q in r.policy.queues}))


@bp.get("/calls/<call_id>/decisions")
@bearer_token_required("agent_token")
def decisions(call_id: str) -> Any:
    """Every routing decision about a call, with its reasons."""
    found = _routing().explain(call_id)
    if not found:
        return _error(f"no routing decisions for call {call_id}", 404)
    return jsonify(call_id=call_id, decisions=found)
