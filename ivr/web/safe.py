"""The last-resort safe path of a voice webhook, for failures outside the engine's own
(the store unwritable, a bug): an apology and the general queue, never a hangup.

The caller is put in the router when it can be written; when not (the store is down),
``/voice/wait``, which Twilio requests on every hold-music loop, admits the call as soon
as the store is back (:func:`admit_waiting`). Only if the queue itself fails does the
caller go to the fallback number (``IVR_FALLBACK_NUMBER``), or, without one, hear a
goodbye; each is counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from flask import Blueprint, Response, current_app, request

from ivr.counters import count
from ivr.engine.core import APOLOGY, GENERAL_QUEUE
from ivr.twiml import empty, fallback_dial, hang_up, safe_queue
from ivr.web.security import twilio_signature_required

log = logging.getLogger("ivr.voice")
bp = Blueprint("safe", __name__, url_prefix="/voice")
CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")
QUEUE_FAILED = frozenset({"error", "system-error", "queue-full"})
SORRY_GOODBYE = ("We're sorry, we cannot connect your call right now. Please call again "
                 "later.")


def _call_sid() -> str | None:
    values = request.form.getlist("CallSid")
    return values[0] if len(values) == 1 and CALL_SID.fullmatch(values[0]) else None


def _now() -> dt.datetime:
    return current_app.extensions["ivr.clock"]()  # type: ignore[no-any-return]


def safe_path_response(reason: str) -> Response:
    """TwiML for a caller whose webhook failed: apology, general queue; counted."""
    call_id = _call_sid()
    count("safe_path")
    log.error("safe path: general queue", extra={"call_id": call_id, "reason": reason[:200]})
    if call_id is not None:
        admit(call_id, GENERAL_QUEUE, "en", reason)
    return Response(safe_queue(APOLOGY["en"], GENERAL_QUEUE), 200, mimetype="text/xml")


def admit(call_id: str, queue: str, language: str, reason: str) -> bool:
    """Put a call the flow could not route into the router's ``queue`` (best effort: the
    store may be what failed). Returns True when the call is in the router."""
    try:
        routing = current_app.extensions["ivr.routing"]
        caller = request.form.get("From")
        effects = routing.admit(call_id, queue, language, {"reason": f"error: {reason[:120]}",
                                                           "caller": caller}, _now())
        routing.run(effects)
        return True
    except Exception as exc:  # the store may be down: /voice/wait tries again
        log.warning("could not enter the router yet; the wait URL will retry",
                    extra={"call_id": call_id, "error": str(exc)[:200]})
        return False


def admit_waiting(call_id: str, queue: str, language: str) -> None:
    """From the wait URL: a caller in Twilio's queue the router does not hold (its enqueue
    failed while the store was down) enters it now."""
    try:
        routing = current_app.extensions["ivr.routing"]
        if routing.state.query(lambda r: call_id in r.calls):
            return
    except Exception:
        return
    if queue not in routing.state.query(lambda r: r.policy.queues):
        queue = GENERAL_QUEUE
    if admit(call_id, queue, language, "not in the router while waiting"):
        log.warning("waiting caller admitted to the router late", extra={"call_id": call_id})


@bp.post("/queue-end")
@twilio_signature_required
def queue_end() -> Response:
    """The safe path's Enqueue ended: gone to an agent, hung up (counted as abandoned), or
    the queue failed (the fallback number)."""
    result = (request.form.get("QueueResult") or "").lower()
    call_id = _call_sid()
    if result in ("redirected", "bridged"):
        return Response(empty(), 200, mimetype="text/xml")
    if result == "hangup" and call_id is not None:
        try:
            routing = current_app.extensions["ivr.routing"]
            routing.run(routing.abandon(call_id, _now()))
        except Exception:
            log.exception("could not count the abandon", extra={"call_id": call_id})
        return Response(hang_up(), 200, mimetype="text/xml")
    if result in QUEUE_FAILED:
        number = current_app.config["IVR"].fallback_number
        count("safe_path_fallback_number" if number else "safe_path_hangup")
        log.error("the safe path's queue failed", extra={"call_id": call_id, "result": result,
                                                         "fallback": bool(number)})
        return Response(fallback_dial(SORRY_GOODBYE, number), 200, mimetype="text/xml")
    return Response(hang_up(), 200, mimetype="text/xml")
