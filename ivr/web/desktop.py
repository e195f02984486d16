"""The agent desktop (``/agent``): presence, offers with their context (screen pop over
Server-Sent Events), the call (hold, mute, transfer), and wrap-up with a disposition.

Every action works on the signed-in user's own agent (``User.agent_id``): nothing here
takes an agent id from the request, so an agent can neither see nor touch another
agent's presence, offers or contact.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from ivr.floor import DISPOSITIONS, MAX_NOTES, FloorEvent, FloorLog, on_hold, pending_consult
from ivr.flows.models import AskNode
from ivr.live.routing import LiveRouting
from ivr.logs import redact
from ivr.web.auth import current_user, require_role
from ivr.web.live import Floor, Hub, sse_headers
from routing import Call, Decision, DecisionKind, RoutingError

log = logging.getLogger(__name__)
bp = Blueprint("desktop", __name__)
BREAK_REASON = "break_reason:"


def _routing() -> LiveRouting:
    return current_app.extensions["ivr.routing"]  # type: ignore[no-any-return]


def _hub() -> Hub:
    return current_app.extensions["ivr.live"]  # type: ignore[no-any-return]


def _floor_log() -> FloorLog:
    return current_app.extensions["ivr.floor"]  # type: ignore[no-any-return]


def _now() -> dt.datetime:
    return current_app.extensions["ivr.clock"]()  # type: ignore[no-any-return]


def _error(message: str, status: int = 400) -> Any:
    return jsonify(error=message), status


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


def _me() -> str | None:
    user = current_user()
    return user.agent_id if user else None


def _mine(view: Callable[[str], Any]) -> Any:
    """Run ``view(agent_id)`` for the signed-in user's agent, or say why not."""
    agent_id = _me()
    if not agent_id:
        return _error("your account works as no agent: an admin gives it one with "
                      "`ivr users add NAME --role agent --agent-id ID`", 409)
    if _routing().state.query(lambda r: agent_id not in r.agents):
        return _error(f"agent '{agent_id}' is not in the roster (flows/agents.yaml)", 409)
    return view(agent_id)


def _done(effects: list[Any] | None = None) -> Any:
    if effects:
        _routing().run(effects)
    _hub().poke()
    return jsonify(ok=True)


# ------------------------------------------------------------------ page and views


@bp.get("/agent")
@require_role("agent")
def page() -> Any:
    policy, agents = _routing().state.query(
        lambda r: (r.policy, {a.id: a.name or a.id for a in r.agents.values()}))
    settings = current_app.config["IVR"]
    softphone = bool(settings.twilio_api_key and settings.twilio_api_secret
                     and settings.twiml_app_sid and settings.account_sid)
    me = _me()
    config = {"agent_id": me, "softphone": softphone, "bridge": _routing().bridge,
              "queues": {q: dict(spec.skills) for q, spec in sorted(policy.queues.items())},
              "skills": list(policy.skills), "agents": {
                  a: name for a, name in sorted(agents.items()) if a != me},
              "transfer_reasons": list(policy.floor.transfer_reasons),
              "dispositions": list(DISPOSITIONS)}
    return render_template("agent.html", agent_id=me, policy=policy, config=config,
                           softphone=softphone,
                           contact=redact(_routing().state.contact(me) or "") if me else "")


def agent_view(floor: Floor, agent_id: str) -> dict[str, Any]:
    """What changes the agent's page: their state and the calls in their slots."""
    agent = floor.agents.get(agent_id) or {}
    slots = agent.get("calls", {})
    return {"agent": {k: agent.get(k) for k in ("id", "name", "state", "presence",
                                                "state_since")},
            # (a call this agent wraps up may already be with the next agent: same id)
            "calls": [floor.calls[c] for c, s in sorted(slots.items())
                      if s != "wrap_up" and c in floor.calls
                      and floor.calls[c]["agent_id"] == agent_id],
            "wrap_up": sorted(c for c, s in slots.items() if s == "wrap_up"),
            "wrap_until": agent.get("wrap_until", {}),
            # a hold, transfer or consult (floor event) may change any agent's page
            "floor_events": floor.floor_events}


def enrich(view: dict[str, Any], agent_id: str, app: Any) -> dict[str, Any]:
    """Add what the screen pop needs and the router does not hold: the routing
    explanation, the IVR path, hold state, the reservation's deadline, break reason."""
    routing: LiveRouting = app.extensions["ivr.routing"]
    store = app.extensions["ivr.store"]
    floor_log: FloorLog = app.extensions["ivr.floor"]
    timeout = routing.state.query(lambda r: r.policy.reservation.timeout_seconds)
    calls = []
    for call in view["calls"]:
        events = floor_log.events(call_id=call["id"])
        pending = pending_consult(events)
        calls.append({**call, "context": redact(call["context"]),
                      "consult": pending.data if pending else None,
                      "declined": bool(events) and events[-1].kind == "consult_end"
                      and not events[-1].data.get("accepted"),
                      "expires_at": (call["offered_at"] or 0) + timeout
                      if call["state"] == "reserved" else None,
                      "on_hold": on_hold(events, agent_id),
                      "explain": explain_lines(routing, call["id"]),
                      "path": ivr_path(store, call["id"])})
    wrap = [{"id": c, "intents": flow_intents(app, store, c),
             "intent": _original_intent(floor_log, store, c),
             "until": view["wrap_until"].get(c)} for c in view["wrap_up"]]
    consults = [{"call_id": e.call_id, "from_agent": e.agent_id, **e.data,
                 "context": redact(_context_of(routing, e.call_id))}
                for e in floor_log.events(since=view_time(app) - 3600)
                if e.kind == "consult" and e.data.get("to_agent") == agent_id
                and pending_consult(floor_log.events(call_id=e.call_id)) == e]
    return {**view, "calls": calls, "wrap_up": wrap, "consults": consults,
            "break_reason": routing.state.meta(BREAK_REASON + agent_id)
            if view["agent"].get("presence") == "break" else None,
            "now": app.extensions["ivr.clock"]().timestamp()}


def view_time(app: Any) -> float:
    return float(app.extensions["ivr.clock"]().timestamp())


def _context_of(routing: LiveRouting, call_id: str) -> dict[str, Any]:
    return routing.state.query(  # type: ignore[no-any-return]
        lambda r: dict(r.calls[call_id].context) if call_id in r.calls else {})


def explain_lines(routing: LiveRouting, call_id: str) -> list[str]:
    """The routing decisions of a call, as ``ivr route explain`` prints them."""
    from ivr.cli import utc_time
    from routing.cli import format_decision

    return [format_decision(Decision.from_dict(d), utc_time)
            for d in routing.explain(call_id)]


def ivr_path(store: Any, call_id: str) -> list[str]:
    """The IVR nodes the caller went through, in order (repeats collapsed)."""
    session = store.get_session(call_id)
    path: list[str] = []
    for record in session.trail if session else []:
        node = record.get("node")
        if node and (not path or path[-1] != node):
            path.append(str(node))
    return path


def flow_intents(app: Any, store: Any, call_id: str) -> list[str]:
    """The intents of the call's flow, for the corrected-intent pick list."""
    session = store.get_session(call_id)
    flow = app.extensions["ivr.flows"].flows.get(session.flow_id) if session else None
    if flow is None:
        return []
    return sorted({i for n in flow.nodes.values() if isinstance(n, AskNode)
                   for i in n.intents})


def _original_intent(floor_log: FloorLog, store: Any, call_id: str) -> str | None:
    """The IVR's intent of the call (kept by its first transfer)."""
    for e in floor_log.events(call_id=call_id):
        if e.kind == "transfer" and e.data.get("original_intent"):
            return str(e.data["original_intent"])
    session = store.get_session(call_id)
    intent = session.data.get("intent") if session else None
    return str(intent) if intent else None


@bp.get("/agent/state")
@require_role("agent")
def state() -> Any:
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return _mine(lambda me: jsonify(enrich(agent_view(_hub().current(), me), me, app)))


@bp.get("/agent/events")
@require_role("agent")
def events() -> Any:
    """The agent's view as Server-Sent Events: a new offer shows within the watcher's
    interval (0.2 s)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def stream(me: str) -> Response:
        return Response(_hub().stream(lambda f: agent_view(f, me),
                                      enrich=lambda v: enrich(v, me, app)),
                        mimetype="text/event-stream", headers=sse_headers())

    return _mine(stream)


# ------------------------------------------------------------------ presence


@bp.post("/agent/presence")
@require_role("agent")
def presence() -> Any:
    body = _body()
    wanted, reason = body.get("state"), body.get("reason")
    policy = _routing().state.query(lambda r: r.policy)
    if wanted not in ("available", "break", "offline"):
        return _error("state: must be available, break or offline")
    if wanted == "break" and reason not in policy.floor.break_reasons:
        return _error(f"reason: a break needs one of {', '.join(policy.floor.break_reasons)}")

    def change(me: str) -> Any:
        now = _now().timestamp()
        try:
            _, effects = _routing().apply(lambda r: r.set_agent_state(me, wanted, now))
        except RoutingError as exc:
            return _error(str(exc), 409)
        if wanted == "break":
            _routing().state.set_meta(BREAK_REASON + me, str(reason))
        return _done(effects)

    return _mine(change)


# ------------------------------------------------------------------ offers and calls


@bp.post("/agent/calls/<call_id>/<action>")
@require_role("agent")
def call_action(call_id: str, action: str) -> Any:
    handlers: dict[str, Callable[[str, str], Any]] = {
        "accept": _accept, "reject": _reject, "hold": _hold, "resume": _resume,
        "complete": _complete, "transfer": _transfer, "wrap-up": _wrap_up}
    handler = handlers.get(action)
    if handler is None:
        return _error(f"action: '{action}' is not one of {', '.join(handlers)}", 404)
    return _mine(lambda me: handler(me, call_id))


def _accept(me: str, call_id: str) -> Any:
    try:
        effects = _routing().agent_decision("accept", call_id, me, _now())
    except RoutingError as exc:
        return _error(str(exc), 409)
    return _done(effects)


def _reject(me: str, call_id: str) -> Any:
    try:
        effects = _routing().agent_decision("reject", call_id, me, _now())
    except RoutingError as exc:
        return _error(str(exc), 409)
    return _done(effects)


def _connected(router: Any, call_id: str, me: str) -> Call:
    call = router.calls.get(call_id)
    if call is None or call.agent_id != me or call.state.value != "connected":
        raise RoutingError(f"call {call_id} is not connected to you")
    return call  # type: ignore[no-any-return]


def _hold(me: str, call_id: str) -> Any:
    return _hold_event(me, call_id, "hold")


def _resume(me: str, call_id: str) -> Any:
    return _hold_event(me, call_id, "resume")


def _hold_event(me: str, call_id: str, kind: str) -> Any:
    try:
        _routing().state.query(lambda r: _connected(r, call_id, me))
    except RoutingError as exc:
        return _error(str(exc), 409)
    held = on_hold(_floor_log().events(call_id=call_id), me)
    if held == (kind == "hold"):
        return _error(f"call {call_id} is {'already' if held else 'not'} on hold", 409)
    _floor_log().add(FloorEvent(call_id, me, _now().timestamp(), kind))
    # conference bridge: the caller's leg to hold music and back (a REST request)
    return _done(_routing().request(call_id, [(kind, me)]))


def _complete(me: str, call_id: str) -> Any:
    """The conversation is over: the agent wraps up."""
    now = _now().timestamp()

    def complete(router: Any) -> Any:
        _connected(router, call_id, me)
        return router.complete(call_id, now)

    return _apply(me, call_id, complete)


def _apply(me: str, call_id: str, change: Callable[[Any], Any]) -> Any:
    try:
        _, effects = _routing().apply(change)
    except RoutingError as exc:
        return _error(str(exc), 409)
    if on_hold(_floor_log().events(call_id=call_id), me):
        _floor_log().add(FloorEvent(call_id, me, _now().timestamp(), "resume"))
    return _done(effects)


def _transfer(me: str, call_id: str) -> Any:
    """Cold transfer: the call leaves this agent (who wraps up) and is offered to the
    named agent, or enters the chosen queue with the skills picked; its context goes
    with it, with the transfer appended. Warm (to a named agent): the agent stays on the
    call until the other accepts the consult on their desktop, then the call moves."""
    request = _transfer_request(_body(), me)
    if isinstance(request, str):
        return _error(request)
    now = _now().timestamp()
    if request["mode"] == "warm":
        try:
            _routing().state.query(lambda r: _connected(r, call_id, me))
        except RoutingError as exc:
            return _error(str(exc), 409)
        if pending_consult(_floor_log().events(call_id=call_id)):
            return _error(f"call {call_id} already waits for a consult", 409)
        _floor_log().add(FloorEvent(call_id, me, now, "consult", request))
        # conference bridge: the caller on hold, the target rung into the call's room
        return _done(_routing().request(call_id, [("hold", me),
                                                  ("consult", request["to_agent"])]))
    return _move(me, call_id, request, now)


def _transfer_request(body: dict[str, Any], me: str) -> dict[str, Any] | str:
    """The checked transfer request, or what is wrong with it."""
    policy = _routing().state.query(lambda r: r.policy)
    reason, queue, target = body.get("reason"), body.get("queue"), body.get("agent")
    mode = body.get("mode", "cold")
    if mode not in ("cold", "warm"):
        return "mode: cold or warm"
    if reason not in policy.floor.transfer_reasons:
        return f"reason: one of {', '.join(policy.floor.transfer_reasons)}"
    if not queue and not target:
        return "queue or agent: say where the call goes"
    if mode == "warm" and not target:
        return "agent: a warm transfer consults a named agent"
    if queue is not None and queue not in policy.queues:
        return f"queue: '{queue}' is not a queue of the routing policy"
    skills = body.get("skills") or {}
    if not isinstance(skills, dict) or not all(
            isinstance(k, str) and k in policy.skills and isinstance(v, int) and 1 <= v <= 5
            for k, v in skills.items()):
        return "skills: an object of policy skills to levels 1-5"
    if target is not None and (not isinstance(target, str) or target == me):
        return "agent: another agent's id"
    if target is not None and _routing().state.query(lambda r: target not in r.agents):
        return f"agent: no agent '{target}'"
    return {"mode": mode, "reason": reason, "to_queue": queue, "to_agent": target,
            "skills": dict(skills)}


def _move(me: str, call_id: str, request: dict[str, Any], now: float,
          accepted_by: str | None = None) -> Any:
    """Move the call from ``me`` to its target; ``accepted_by`` (a warm transfer's target,
    who already agreed) takes it at once."""
    record: dict[str, Any] = {}
    target, queue = request["to_agent"], request["to_queue"]
    # A consulted agent is already in the call's room: the caller is not moved to them.
    in_room = accepted_by is not None and _routing().in_room(call_id)
    queued: list[bool] = []

    def transfer(router: Any) -> Any:
        call = _connected(router, call_id, me)
        context = dict(call.context)
        original = context.get("original_intent") or context.get("intent")
        record.update(request, from_queue=call.queue, to_queue=queue or call.queue,
                      original_intent=original)
        context["transfers"] = [*context.get("transfers", []), {"by": me, "at": now, **record}]
        if original is not None:
            context["original_intent"] = original
        decisions = router.complete(call_id, now)
        leg = Call(id=call_id, queue=queue or call.queue, skills=dict(request["skills"]),
                   language=call.language, priority=call.priority, context=context)
        if target is None:
            routed = router.enqueue(leg, now)
            queued.append(routed.kind is DecisionKind.QUEUED)
            return decisions + [routed]
        offered = router.offer_to(leg, target, now, note=f"transfer: {request['reason']}")
        if accepted_by is not None:
            router.accept(call_id, accepted_by, now)
        return decisions if in_room else decisions + [offered]

    response = _apply(me, call_id, transfer)
    if not isinstance(response, tuple):  # done (an error is a (body, status) pair)
        _floor_log().add(FloorEvent(call_id, me, now, "transfer", record))
        if queued and queued[0]:  # nobody free: the caller waits as a queued caller does
            _routing().run(_routing().request(call_id, [("requeue", me)]))
        elif in_room:  # the target stays with the caller, the first agent leaves
            _routing().run(_routing().request(call_id, [("consult_accept", str(accepted_by))],
                                              to=me))
        log.info("transferred", extra={"call_id": call_id, "agent": me, **{
            k: v for k, v in record.items() if k in ("mode", "reason", "to_queue",
                                                     "to_agent")}})
    return response


@bp.post("/agent/consults/<call_id>/<action>")
@require_role("agent")
def consult(call_id: str, action: str) -> Any:
    """The target of a warm transfer accepts (the call comes to them at once) or
    declines (the first agent keeps it)."""
    if action not in ("accept", "decline"):
        return _error("action: accept or decline", 404)

    def answer(me: str) -> Any:
        pending = pending_consult(_floor_log().events(call_id=call_id))
        if pending is None or pending.data.get("to_agent") != me:
            return _error(f"no consult about call {call_id} waits for you", 409)
        now = _now().timestamp()
        if action == "decline":
            _floor_log().add(FloorEvent(call_id, me, now, "consult_end", {"accepted": False}))
            # conference bridge: the target leaves the room, the caller is resumed
            return _done(_routing().request(call_id, [("consult_end", me)]))
        response = _move(pending.agent_id, call_id, pending.data, now, accepted_by=me)
        if not isinstance(response, tuple):
            _floor_log().add(FloorEvent(call_id, me, now, "consult_end", {"accepted": True}))
        return response

    return _mine(answer)


def _wrap_up(me: str, call_id: str) -> Any:
    """The disposition of the call, the corrected intent and notes; the agent is then
    available again."""
    body = _body()
    disposition = body.get("disposition")
    corrected = body.get("corrected_intent") or None
    notes = str(body.get("notes") or "")
    if disposition not in DISPOSITIONS:
        return _error(f"disposition: one of {', '.join(DISPOSITIONS)}")
    if len(notes) > MAX_NOTES:
        return _error(f"notes: at most {MAX_NOTES} characters")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    store = app.extensions["ivr.store"]
    if corrected is not None and corrected not in flow_intents(app, store, call_id):
        return _error(f"corrected_intent: '{corrected}' is not an intent of the call's flow")
    in_wrap = _routing().state.query(
        lambda r: r.agents[me].slots.get(call_id) is not None
        and r.agents[me].slots[call_id].value == "wrap_up")
    if not in_wrap:
        return _error(f"call {call_id} is not in your wrap-up", 409)
    now = _now().timestamp()
    original = _original_intent(_floor_log(), store, call_id)
    _floor_log().add(FloorEvent(call_id, me, now, "disposition", {
        "disposition": disposition, "intent": original, "corrected_intent": corrected,
        "notes": notes}))
    try:
        _, effects = _routing().apply(lambda r: r.agent_available(me, now))
    except RoutingError as exc:
        return _error(str(exc), 409)
    return _done(effects)


# ------------------------------------------------------------------ softphone


@bp.get("/agent/token")
@require_role("agent")
def token() -> Any:
    """A short-lived Twilio Voice access token for this agent's softphone (identity =
    agent id); the agent's contact becomes ``client:ID``."""
    settings = current_app.config["IVR"]
    if not (settings.twilio_api_key and settings.twilio_api_secret and settings.twiml_app_sid
            and settings.account_sid):
        return _error("softphone off: set TWILIO_ACCOUNT_SID, TWILIO_API_KEY, "
                      "TWILIO_API_SECRET and TWILIO_TWIML_APP_SID", 404)

    def mint(me: str) -> Any:
        from twilio.jwt.access_token import AccessToken
        from twilio.jwt.access_token.grants import VoiceGrant

        ttl = 600  # short-lived; the page refreshes it before it expires
        jwt = AccessToken(settings.account_sid, settings.twilio_api_key,
                          settings.twilio_api_secret, identity=me, ttl=ttl)
        jwt.add_grant(VoiceGrant(outgoing_application_sid=settings.twiml_app_sid,
                                 incoming_allow=True))
        _routing().state.set_contact(me, f"client:{me}")
        return jsonify(token=jwt.to_jwt(), identity=me, ttl=ttl)

    return _mine(mint)
