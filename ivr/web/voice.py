"""The Twilio Voice webhooks: a thin driver over the pure flow engine.

Each request: check the signature, parse and bound the parameters, then either replay
the answer already given for that turn (Twilio retried) or run one engine step, render
its actions as TwiML and save both in one store transaction for the call, with the
routing change the step makes. Whatever fails inside a call ends in the safe path: an
apology and a human.

The step is decided *before* the transaction, on the session as read, and only saved
inside it (:func:`_decide_then_commit`): the store's write lock is shared by every call
of the host, so it is held for the writes and the routing change alone, not for the
flow engine, the intent model and the TwiML. When another request of the same call
saved in between (Twilio sends a call's webhooks one at a time, so only a retry races),
the step is decided again under the lock, as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field
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


@dataclass
class _Plan:
    """What a webhook answers, decided outside the write lock; :meth:`commit` saves it."""

    body: str = ""
    #: No new step: answer with the first stored response of these turns (a retry).
    replay: tuple[int, ...] = ()
    before: Session | None = None
    after: Session | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    #: The engine's decisions since ``before`` (``Session.new_trail``).
    trail: list[dict[str, Any]] = field(default_factory=list)
    abandon: bool = False
    effects: list[Effect] = field(default_factory=list)

    def commit(self, rec: Any) -> None:
        if self.after is None:
            self.body = next((b for t in self.replay if (b := rec.response(t))), apology())
            return
        # The session first, the router last: on PostgreSQL the routing lock is shared
        # by every host and is held from the routing change to the commit.
        rec.save(self.after, self.body, self.inputs + _audit(self.trail))
        self.effects = _enter_router(self.before, self.after, _now())
        if self.abandon:
            self.effects += _abandon(self.after.call_id)


def _decide_then_commit(call_id: str, decide: Callable[[Session | None], _Plan]) -> _Plan:
    """``decide`` on the stored session without the write lock, then commit under it;
    decided again under the lock when the session changed in between."""
    store = _store()
    seen = store.get_session(call_id)
    plan = decide(seen)
    if plan.after is not None:
        plan.after.to_json()  # serialised here, not under the lock (Session keeps it)
        if plan.after.status == "queued" or plan.abandon:
            _routing().prepare()
    with store.transaction(call_id) as rec:
        # Unchanged, the store's session is the very object read above (Session.from_json).
        if rec.session is not seen and rec.session != seen:
            plan = decide(rec.session)
        plan.commit(rec)
    if plan.after is not None:
        _log_trail(plan.after, plan.trail)
    _run_effects(plan.effects)
    return plan


@bp.post("/incoming")
@twilio_signature_required
def incoming() -> Response:
    """A new call: start the flow for the dialled number."""
    call_id = _call_sid()
    caller = _param("From") or "anonymous"
    called = _param("To") or ""

    def decide(session: Session | None) -> _Plan:
        if session is not None:  # Twilio retried the first webhook
            return _Plan(replay=(0, session.turn))
        flow = _registry().for_number(called)
        now = _now()
        try:
            body, new = _rendered(*start(flow, call_id, caller, called, now))
        except Exception:
            log.exception("flow start failed; safe path", extra={"call_id": call_id})
            seed = _seed(flow, call_id, now, turn=0, caller=caller, called=called)
            body, new = _rendered(*fail_safe(flow, seed, None, now, "exception at start"))
        return _Plan(body, after=new, trail=new.new_trail(None))

    return _twiml(_decide_then_commit(call_id, decide).body)


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

    def decide(session: Session | None) -> _Plan:
        if session is not None and turn <= session.turn:
            log.info("repeated webhook answered from the store",
                     extra={"call_id": call_id, "turn": turn})
            return _Plan(replay=(turn, session.turn))
        if session is not None and turn > session.turn + 1:
            log.warning("webhook from a turn not yet issued; answering the current turn",
                        extra={"call_id": call_id, "turn": turn, "current": session.turn})
            return _Plan(replay=(session.turn,))
        body, new = _advance(call_id, session, turn, event)
        hung_up = isinstance(event, LegEnded) and event.status == "hangup" \
            and session is not None and session.status == "queued"
        return _Plan(body, before=session, after=new, abandon=hung_up,
                     inputs=_input_record(session, event, turn), trail=new.new_trail(session))

    return _twiml(_decide_then_commit(call_id, decide).body)


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


def _audit(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engine's decisions as audit-log records."""
    return [{"kind": "step", **rec} for rec in trail]


def _log_trail(new: Session, trail: list[dict[str, Any]]) -> None:
    """One structured log record per engine decision (after the commit: not under the lock)."""
    for rec in trail:
        log.info("step", extra={"call_id": new.call_id, "flow": new.flow_id, **rec})


def _log_steps(new: Session, before: Session | None) -> list[dict[str, Any]]:
    """Log one structured record per engine decision; return them for the audit log."""
    trail = new.new_trail(before)
    _log_trail(new, trail)
    return _audit(trail)
