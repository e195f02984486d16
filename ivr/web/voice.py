"""The Twilio Voice webhooks: a thin driver over the pure flow engine.

Each request: check the signature, parse and bound the parameters, then, inside one
store transaction for the call, either replay the answer already given for that
turn (Twilio retried) or run one engine step, render its actions as TwiML and save
both. Whatever fails inside a call ends in the safe path: an apology and a human.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any, Callable

from flask import Blueprint, Response, current_app, request

from ivr.engine import (
    Action,
    CallEnded,
    CallerInput,
    Event,
    LegEnded,
    RecordingDone,
    Session,
    fail_safe,
    start,
    step,
)
from ivr.flows.loader import Flow
from ivr.flows.registry import FlowRegistry
from ivr.live.calls_store import Store
from ivr.live.routing import Effect, LiveRouting
from ivr.twiml import Links, apology, empty, hang_up, render
from ivr.web.errors import BadRequest
from ivr.web.security import twilio_signature_required
from routing import RoutingError

log = logging.getLogger("ivr.voice")
bp = Blueprint("voice", __name__, url_prefix="/voice")

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
DIGITS = re.compile(r"[0-9*#]{0,64}")
NUMBER = re.compile(r"[0-9]{1,6}")
EVENTS = ("gather", "noinput", "record", "dial", "queue")
FINAL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MAX_PARAM = 2000


def _twiml(body: str) -> Response:
    return Response(body, 200, mimetype="text/xml")


def _registry() -> FlowRegistry:
    return current_app.extensions["ivr.flows"]  # type: ignore[no-any-return]


def _store() -> Store:
    return current_app.extensions["ivr.store"]  # type: ignore[no-any-return]


def _now() -> dt.datetime:
    clock: Callable[[], dt.datetime] = current_app.extensions["ivr.clock"]
    return clock()


def _param(name: str, required: bool = False) -> str | None:
    values = request.form.getlist(name)
    if len(values) > 1:
        raise BadRequest(f"form parameter {name} is given {len(values)} times; send it once")
    value = values[0] if values else None
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing form parameter {name}")
        return None
    if len(value) > MAX_PARAM and name != "SpeechResult":
        raise BadRequest(f"form parameter {name} is too long ({len(value)} characters)")
    return value


def number_param(name: str) -> int | None:
    """A small non-negative integer parameter in ASCII digits (None when absent)."""
    raw = _param(name)
    if raw is None:
        return None
    if not NUMBER.fullmatch(raw):
        raise BadRequest(f"form parameter {name} must be a whole number 0-999999")
    return int(raw)


def _call_sid() -> str:
    sid = _param("CallSid", required=True)
    assert sid is not None
    if not CALL_SID.fullmatch(sid):
        raise BadRequest("CallSid must look like CA followed by 32 hex digits")
    return sid


def query_call_sid(name: str = "call") -> str:
    """A CallSid given in the query string (the URLs the app itself issued)."""
    sid = request.args.get(name, "")
    if not CALL_SID.fullmatch(sid):
        raise BadRequest(f"query parameter {name} must be CA followed by 32 hex digits")
    return sid


@bp.post("/incoming")
@twilio_signature_required
def incoming() -> Response:
    """A new call: start the flow for the dialled number."""
    call_id = _call_sid()
    caller = _param("From") or "anonymous"
    called = _param("To") or ""
    with _store().transaction(call_id) as rec:
        if rec.session is not None:  # Twilio retried the first webhook
            return _twiml(rec.response(0) or rec.response(rec.session.turn) or apology())
        flow = _registry().for_number(called)
        now = _now()
        try:
            body, session = _rendered(*start(flow, call_id, caller, called, now))
        except Exception:
            log.exception("flow start failed; safe path", extra={"call_id": call_id})
            seed = _seed(flow, call_id, now, turn=0, caller=caller, called=called)
            body, session = _rendered(*fail_safe(flow, seed, None, now, "exception at start"))
        effects = _enter_router(None, session, now)
        rec.save(session, body, _log_steps(session, None))
    _run_effects(effects)
    return _twiml(body)


@bp.post("/step")
@twilio_signature_required
def step_webhook() -> Response:
    """Every later turn of a call: Gather, Record, Dial and Enqueue actions."""
    call_id = _call_sid()
    turn = _turn()
    event = _event(request.args.get("ev", ""))
    if isinstance(event, LegEnded) and request.args.get("ev") == "queue":
        if event.status == "redirected":  # moved out of the queue to its agent: nothing to do
            return _twiml(empty())
        if event.status == "leave":  # left the queue for a callback
            return _twiml(hang_up())
    with _store().transaction(call_id) as rec:
        session = rec.session
        if session is not None and turn <= session.turn:
            log.info("repeated webhook answered from the store",
                     extra={"call_id": call_id, "turn": turn})
            return _twiml(rec.response(turn) or rec.response(session.turn) or apology())
        if session is not None and turn > session.turn + 1:
            log.warning("webhook from a turn not yet issued; answering the current turn",
                        extra={"call_id": call_id, "turn": turn, "current": session.turn})
            return _twiml(rec.response(session.turn) or apology())
        body, new = _advance(call_id, session, turn, event)
        effects = _enter_router(session, new, _now())
        if isinstance(event, LegEnded) and event.status == "hangup" and session is not None \
                and session.status == "queued":
            effects += _abandon(call_id)
        rec.save(new, body, _input_record(session, event, turn) + _log_steps(new, session))
    _run_effects(effects)
    return _twiml(body)


def _routing() -> LiveRouting:
    """The app's live router (create_app always makes one)."""
    return current_app.extensions["ivr.routing"]  # type: ignore[no-any-return]


def _enter_router(before: Session | None, after: Session, now: dt.datetime) -> list[Effect]:
    """A step that routed the call puts it in the router, in the same transaction."""
    if after.status != "queued" or after.route is None:
        return []
    if before is not None and before.status == "queued":
        return []
    try:
        return _routing().enqueue(after, now)
    except RoutingError:
        # The route names a queue the policy lacks (a flow edited under a running server):
        # the caller stays in Twilio's queue and a supervisor sees the error.
        log.exception("routing refused the call", extra={"call_id": after.call_id})
        return []


def _abandon(call_id: str) -> list[Effect]:
    return _routing().abandon(call_id, _now())


def _run_effects(effects: list[Effect]) -> None:
    if effects:
        _routing().run(effects)


def _advance(call_id: str, session: Session | None, turn: int, event: Event
             ) -> tuple[str, Session]:
    now = _now()
    registry = _registry()
    if session is None:  # state lost or a call we never saw: get the caller to a human
        log.warning("unknown call; safe path", extra={"call_id": call_id})
        flow = registry.default()
        seed = _seed(flow, call_id, now, turn=turn, caller=_param("From") or "anonymous")
        return _rendered(*fail_safe(flow, seed, event, now, "unknown call"))
    current = registry.get(session.flow_id, session.flow_version)
    try:
        if current is None:
            raise LookupError(f"flow '{session.flow_id}' is no longer loaded")
        return _rendered(*step(current, session, event, now))
    except Exception as exc:
        log.exception("step failed; safe path", extra={"call_id": call_id})
        # Even with its flow gone, the call gets the safe path in the default flow's voice.
        return _rendered(*fail_safe(current or registry.default(), session, event, now,
                                    f"exception: {exc!r}"[:200]))


def _rendered(actions: list[Action], session: Session) -> tuple[str, Session]:
    """TwiML for a step's actions, its URLs pointing at the session's next turn."""
    return render(actions, Links(turn=session.turn + 1)), session


def _seed(flow: Flow, call_id: str, now: dt.datetime, turn: int, **data: str) -> Session:
    """A session for a call the engine never started, so that its safe path answers ``turn``."""
    return Session(call_id=call_id, flow_id=flow.id, flow_version=flow.version,
                   started_at=now, updated_at=now, turn=turn - 1, data=data)


def _turn() -> int:
    raw = request.args.get("turn", "")
    if not NUMBER.fullmatch(raw):
        raise BadRequest("query parameter turn must be a non-negative integer")
    return int(raw)


def _event(kind: str) -> Event:
    if kind not in EVENTS:
        raise BadRequest(f"query parameter ev must be one of {', '.join(EVENTS)}")
    if kind in ("gather", "noinput"):
        digits = _param("Digits")
        if digits is not None and not DIGITS.fullmatch(digits):
            raise BadRequest("Digits must be keypad keys 0-9, * or #")
        speech = _param("SpeechResult")
        return CallerInput(digits=digits, speech=speech[:500] if speech else None,
                           confidence=_confidence(_param("Confidence")))
    if kind == "record":
        return RecordingDone(url=_param("RecordingUrl"),
                             duration_seconds=number_param("RecordingDuration") or 0)
    if kind == "dial":
        return LegEnded(_param("DialCallStatus") or "failed")
    return LegEnded(_param("QueueResult") or "hangup")


def _confidence(raw: str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


@bp.post("/status")
@twilio_signature_required
def status() -> Response:
    """The call's status callback: a final status ends the session."""
    call_id = _call_sid()
    call_status = (_param("CallStatus") or "").lower()
    if call_status not in FINAL_STATUSES:
        return Response(status=204)
    if request.args.get("callback_for") is not None:
        # the leg that rang a caller back, not the caller's own call
        ringing_back = query_call_sid("callback_for")
        _run_effects(_routing().callback_leg_ended(
            ringing_back, request.args.get("agent", ""), call_status, _now()))
        return Response(status=204)
    with _store().transaction(call_id) as rec:
        session = rec.session
        if session is None or session.status == "ended":
            return Response(status=204)
        flow = _registry().get(session.flow_id, session.flow_version)
        if flow is None:
            new = session.model_copy(update=dict(status="ended", turn=session.turn + 1))
        else:
            _, new = step(flow, session, CallEnded(call_status), _now())
        effects = _abandon(call_id) if session.status == "queued" else []
        rec.save(new, "", _log_steps(new, session))
    _run_effects(effects)
    return Response(status=204)


def _input_record(before: Session | None, event: Event, turn: int) -> list[dict[str, Any]]:
    """What the caller said or pressed at a prompt, kept so the flow studio can replay
    real calls through a draft (:mod:`ivr.replay`)."""
    if before is None or not isinstance(event, CallerInput):
        return []
    return [{"kind": "input", "decision": "caller input", "turn": turn, "node": before.node,
             "at": _now().isoformat(), "digits": event.digits, "speech": event.speech,
             "confidence": event.confidence}]


def _log_steps(new: Session, before: Session | None) -> list[dict[str, Any]]:
    """Log one structured record per engine decision; return them for the audit log."""
    records = new.new_trail(before)
    for rec in records:
        log.info("step", extra={"call_id": new.call_id, "flow": new.flow_id, **rec})
    return [{"kind": "step", **rec} for rec in records]
