"""Webhooks of a call while the router holds it: hold and wait estimates, callbacks,
connecting the reserved agent with a whisper, and the end of the agent leg.

These are not turn-numbered like the IVR's steps: each is idempotent by the router's
state (a call is reserved to one agent at a time; a repeated request finds the work
done and answers the same way).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request

from ivr.engine import LegEnded, Session
from ivr.engine.core import GENERAL_QUEUE
from ivr.engine.trust import WHISPER, trust_level
from ivr.floor import FloorEvent, FloorLog, pending_consult
from ivr.live.conference import agent_label, event_of, room_name
from ivr.live.routing import minutes_phrase, standing
from ivr.twiml import (
    Links,
    callback_booked,
    conference_agent,
    conference_caller,
    conference_wait,
    connect_agent,
    empty,
    hang_up,
    hold,
    on_hold_music,
    requeue,
    whisper,
)
from ivr.web.errors import BadRequest
from ivr.web.safe import admit_waiting
from ivr.web.security import twilio_signature_required
from ivr.web.voice import (
    _advance,
    _audit,
    _call_sid,
    _log_trail,
    _now,
    _param,
    _routing,
    _run_effects,
    _store,
    _twiml,
    number_param,
    query_call_sid,
)
from routing import RoutingError

log = logging.getLogger("ivr.routing")
#: An agent id as the roster and the agent API accept it: printable, no slash, 1-64.
AGENT_ID = re.compile(r"[^\x00-\x1f\x7f/]{1,64}")
bp = Blueprint("queueing", __name__, url_prefix="/voice")


def _agent_param() -> str:
    agent = request.args.get("agent", "")
    if not AGENT_ID.fullmatch(agent):
        raise BadRequest("query parameter agent must be an agent id (1-64 printable characters)")
    return agent


def _locale(session: Session | None) -> str:
    if session is None or not session.route:
        return "en-US"
    return {"es": "es-US", "en": "en-US"}.get(session.route.get("language", "en"), "en-US")


@bp.post("/wait")
@twilio_signature_required
def wait() -> Response:
    """Enqueue's wait URL: place in line, expected wait, a callback offer if it is long."""
    position = number_param("QueuePosition")
    call_id = _call_sid()
    session = _store().get_session(call_id)
    route = (session.route or {}) if session else {}
    admit_waiting(call_id, str(route.get("queue") or request.args.get("queue") or GENERAL_QUEUE),
                  str(route.get("language") or "en"))
    estimate = _routing().estimated_wait(call_id, _now()) if session else None
    offer = None
    threshold = (session.route or {}).get("callback_after_seconds") if session else None
    if threshold is not None and estimate is not None and estimate > threshold:
        offer = "/voice/callback"
    body = hold(position, minutes_phrase(estimate), current_app.config["IVR"].hold_music_url,
                offer, _locale(session))
    return _twiml(body)


@bp.post("/callback")
@twilio_signature_required
def callback() -> Response:
    """The caller pressed 1 on hold: keep their place, ring them back, let them go."""
    call_id = _call_sid()
    if _param("Digits") != "1":
        return _twiml(requeue_doc(call_id))
    session = _store().get_session(call_id)
    if session is None or session.status != "queued":
        return _twiml(hang_up())
    to = str(session.data.get("caller", ""))
    from_ = str(session.data.get("called", ""))

    def book(router: Any) -> None:
        router.set_context(call_id, "callback", {"to": to, "from": from_})

    try:
        _routing().apply(book)
    except (KeyError, RoutingError):
        return _twiml(requeue_doc(call_id))
    log.info("callback booked; place kept", extra={"call_id": call_id})
    return _twiml(callback_booked(_locale(session)))


def requeue_doc(call_id: str) -> str:
    """Back into the queue the router holds the call in (after a transfer, the new one),
    else the queue the IVR routed it to."""
    session = _store().get_session(call_id)
    queue = (session.route or {}).get("queue", GENERAL_QUEUE) if session else GENERAL_QUEUE
    queue = _routing().state.query(
        lambda r: r.calls[call_id].queue if call_id in r.calls else queue)
    return requeue(queue, Links(turn=(session.turn + 1) if session else 1), _locale(session))


@bp.post("/connect")
@twilio_signature_required
def connect() -> Response:
    """The caller's leg, redirected here once an agent is reserved: dial the agent."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    routing = _routing()
    found, timeout = routing.state.query(lambda router: (
        standing(router, call_id, agent_id), int(router.policy.reservation.timeout_seconds)))
    known = found != ""
    # Reserved, or already accepted (even completed) by this agent through the API before
    # Twilio fetched this URL: either way the caller is bridged to them (as
    # LiveRouting.assignment, from the one read of the router).
    held = found not in (None, "") or (not known and routing.completed_by(call_id, agent_id))
    contact = routing.state.contact(agent_id)
    if not held or contact is None:
        log.warning("connect for a reservation that no longer holds", extra={
            "call_id": call_id, "agent": agent_id})
        return _twiml(requeue_doc(call_id) if known else hang_up())
    query = urlencode({"call": call_id, "agent": agent_id})
    session = _store().get_session(call_id)
    if routing.in_room(call_id) and _call_sid() == call_id:
        # The caller waits in the call's room; the sender rings the agent into it. (A
        # caller rung back is a leg of its own: it dials the agent as with the dial bridge.)
        status = "/voice/conference?" + urlencode({"call": call_id})
        return _twiml(conference_caller(
            room_name(call_id), f"/voice/agent-done?{query}",
            "/voice/conference-wait?" + urlencode({"call": call_id}), status,
            _locale(session)))
    return _twiml(connect_agent(contact, f"/voice/whisper?{query}", f"/voice/agent-done?{query}",
                                timeout, _locale(session)))


def _answered(call_id: str, agent_id: str) -> tuple[dict[str, Any], str] | None:
    """Accept the reservation of the agent who picked up: the call's context and queue
    ("" once the call left the router), or None when it no longer waits for them."""
    routing = _routing()
    if not routing.agent_answered(call_id, agent_id, _now()):
        return None
    return routing.state.query(  # type: ignore[no-any-return]
        lambda r: (dict(r.calls[call_id].context), r.calls[call_id].queue)
        if call_id in r.calls else ({}, ""))


@bp.post("/whisper")
@twilio_signature_required
def whisper_webhook() -> Response:
    """The agent picked up: accept the reservation and tell them who is calling and why."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    answered = _answered(call_id, agent_id)
    if answered is None:
        return _twiml(hang_up("This call is no longer waiting for you."))
    context, queue = answered
    if not queue:  # already completed through the API: what the IVR stored
        route = _store().route_request(call_id) or {}
        context, queue = dict(route.get("context") or {}), str(route.get("queue") or "")
    return _twiml(whisper(whisper_text(context, queue)))


def whisper_text(context: dict[str, Any], queue: str) -> str:
    """A few words for the agent: queue, who, why, in the caller's own words."""
    parts = [f"{queue.replace('_', ' ')} call." if queue else "Incoming call."]
    customer = context.get("customer")
    if isinstance(customer, dict) and customer.get("first_name"):
        name = f"{customer.get('first_name', '')} {customer.get('last_name', '')}".strip()
        tier = customer.get("tier")
        parts.append(f"{name}, {tier} customer." if tier else f"{name}.")
    trust = context.get("trust")
    parts.append(WHISPER[trust if isinstance(trust, str) and trust in WHISPER
                         else trust_level(context)])
    if context.get("intent"):  # the caller's purpose (an ask's answer stored as `intent`)
        parts.append(f"Reason: {str(context['intent']).replace('_', ' ')}.")
    elif context.get("escaped_to_agent"):
        parts.append("Reason: asked for an agent.")
    nlu = context.get("nlu")
    if isinstance(nlu, dict) and nlu.get("text"):
        parts.append(f"They said: {str(nlu['text'])[:120]}.")
    if context.get("callback"):
        parts.append("This is a callback.")
    return " ".join(parts)


@bp.post("/agent-done")
@twilio_signature_required
def agent_done() -> Response:
    """The Dial to the agent ended: talk over (wrap-up, then the flow's next node, such as
    the survey), or no answer (the call goes to the next best agent)."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    status = (_param("DialCallStatus") or "failed").lower()
    if status == "answered":  # a <Dial><Conference> that ended after the caller was in it
        status = "completed"
    leg = _call_sid()
    now = _now()
    routing = _routing()
    # The flow's next step after the talk (e.g. the survey) is worked out before the
    # transaction, as the voice webhooks do, and used if the session is still the same.
    seen = _store().get_session(call_id)
    ahead = None
    if leg == call_id and seen is not None and seen.status == "queued":
        ahead = _advance(call_id, seen, seen.turn + 1, LegEnded("bridged"))
    if ahead is not None:
        ahead[1].to_json()  # serialised here, not under the lock (Session keeps it)
    routing.prepare()
    saved: tuple[Any, list[dict[str, Any]]] | None = None
    with _store().transaction(call_id) as rec:
        talked, effects = routing.agent_leg_ended(call_id, agent_id, status, now)
        session = rec.session
        if not talked:
            body = requeue_doc(call_id) if leg == call_id else hang_up()
        elif session is None or leg != call_id:
            body = hang_up("Thank you for calling. Goodbye.")
        elif session.status != "queued":  # a repeated request: the flow already moved on
            body = rec.response(session.turn) or hang_up()
        else:
            if ahead is None or (session is not seen and session != seen):
                ahead = _advance(call_id, session, session.turn + 1, LegEnded("bridged"))
            body, new = ahead
            saved = new, new.new_trail(session)
            rec.save(new, body, _audit(saved[1]))
    if saved is not None:
        _log_trail(*saved)
    _run_effects(effects)
    return _twiml(body)


# ------------------------------------------------------------------ conference bridge


def _floor() -> FloorLog:
    return current_app.extensions["ivr.floor"]  # type: ignore[no-any-return]


@bp.post("/agent-join")
@twilio_signature_required
def agent_join() -> Response:
    """The agent answered the leg the sender rang (conference bridge): accept the
    reservation, whisper who is calling and why, and join the call's room."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    answered = _answered(call_id, agent_id)
    if answered is None:
        return _twiml(hang_up("This call is no longer waiting for you."))
    context, queue = answered
    status = "/voice/conference?" + urlencode({"call": call_id})
    return _twiml(conference_agent(whisper_text(context, queue), room_name(call_id),
                                   agent_label(agent_id), status))


@bp.post("/agent-leg")
@twilio_signature_required
def agent_leg() -> Response:
    """The status callback of an agent leg the sender rang: unanswered (no answer, busy,
    failed), the reservation times out or is rejected and the call goes to the next best
    agent; with nobody free the caller goes from the room to the queue's wait."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    status = (_param("CallStatus") or "").lower()
    routing = _routing()
    if status not in ("completed", "busy", "failed", "no-answer", "canceled") or \
            routing.assignment(call_id, agent_id) != "reserved":
        return Response(status=204)  # ringing, or a talk that ended: the room tells that
    _, effects = routing.agent_leg_ended(call_id, agent_id, status, _now())
    waiting = routing.state.query(lambda r: call_id in r.calls
                                  and r.calls[call_id].state.value == "waiting")
    if waiting:
        effects += routing.request(call_id, [("requeue", agent_id)])
    _run_effects(effects)
    return Response(status=204)


@bp.post("/conference")
@twilio_signature_required
def conference_event() -> Response:
    """A status callback of the call's room (start, end, join, leave, hold), kept in the
    room log (not the floor log: a callback wakes no agent page): the sender finds the
    room's ConferenceSid and the participants there."""
    call_id = query_call_sid()
    event = event_of({k: v for k, v in request.form.items() if len(v) <= 200})
    if event.get("ConferenceSid"):
        rooms: FloorLog = current_app.extensions["ivr.rooms"]
        rooms.add(FloorEvent(call_id, event.get("ParticipantLabel", ""), _now().timestamp(),
                             "conference", event))
    return Response(status=204)


@bp.post("/consult-leg")
@twilio_signature_required
def consult_leg() -> Response:
    """The status callback of a consulted agent's leg: unanswered, or gone before taking
    the call, the consult ends and the caller is back with the first agent."""
    call_id = query_call_sid()
    agent_id = _agent_param()
    status = (_param("CallStatus") or "").lower()
    if status not in ("completed", "busy", "failed", "no-answer", "canceled"):
        return Response(status=204)
    pending = pending_consult(_floor().events(call_id=call_id))
    if pending is None or pending.data.get("to_agent") != agent_id:
        return Response(status=204)  # taken (or declined) already
    _floor().add(FloorEvent(call_id, agent_id, _now().timestamp(), "consult_end",
                            {"accepted": False, "leg": status}))
    _run_effects(_routing().request(call_id, [("consult_end", agent_id)]))
    return Response(status=204)


@bp.post("/hold-music")
@twilio_signature_required
def hold_music() -> Response:
    """The ``holdUrl`` of a caller an agent put on hold."""
    _call_sid()
    return _twiml(on_hold_music(current_app.config["IVR"].hold_music_url))


@bp.post("/conference-wait")
@twilio_signature_required
def conference_wait_webhook() -> Response:
    """The caller's wait in the room until the agent's leg joins."""
    call_id = query_call_sid()
    session = _store().get_session(call_id)
    estimate = _routing().estimated_wait(call_id, _now())
    return _twiml(conference_wait(minutes_phrase(estimate),
                                  current_app.config["IVR"].hold_music_url, _locale(session)))


@bp.post("/requeue")
@twilio_signature_required
def requeue_webhook() -> Response:
    """The caller's leg, moved here after a transfer to a queue with nobody free (or an
    agent leg that went unanswered): the queue's wait, as a queued caller hears it."""
    call_id = query_call_sid()
    if _call_sid() != call_id:
        return _twiml(empty())
    return _twiml(requeue_doc(call_id))
