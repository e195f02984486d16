"""Replaying stored calls through a flow version: the flow studio's impact preview.

Each stored call keeps what its caller said or pressed at each prompt (``input``
records in the store's audit log). Feeding those inputs, in order and at their
original times, to the same pure engine gives where the call would end under another
version: an agent queue, self-service, a transfer, or "no-match" (the IVR never
understood and gave up on the question). Comparing the published version with a draft
shows what a change does before any caller hears it. Inputs are replayed in the order
they were given, so a draft that asks new questions gets the old answers in turn; a
path of the draft that no stored input reaches is reported as such.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

from ivr.engine import CallerInput, Session, start, step
from ivr.flows.loader import HUMAN_NODE, Flow
from ivr.logs import redact_phone

log = logging.getLogger(__name__)
#: Trail decisions that mean the IVR did not understand the caller and gave up asking.
GAVE_UP = ("tries exhausted", "failed tries in a row")


@dataclass(frozen=True)
class StoredCall:
    """One real call, as much of it as a replay needs."""

    call_id: str
    flow_id: str
    caller: str
    called: str
    started_at: dt.datetime
    inputs: tuple[tuple[dt.datetime, CallerInput], ...]
    stored_outcome: str = ""


@dataclass
class Replayed:
    outcome: str
    visited: set[str] = field(default_factory=set)
    heard: list[str] = field(default_factory=list)


def outcome_of(session: Session) -> str:
    """Where a call ended, as one label: ``route:<queue>``, ``self-service``,
    ``transfer``, ``no-match`` (possibly then routed to a human), or ``in IVR`` (the
    caller stopped answering while the IVR was still asking)."""
    gave_up = any(any(g in str(t.get("decision", "")) for g in GAVE_UP) for t in session.trail)
    if gave_up:
        return "no-match"
    if session.route is not None:
        return f"route:{session.route.get('queue')}"
    if session.outcome == "transferred_out":
        return "transfer"
    if session.status == "ended" and session.outcome == "completed_in_ivr":
        return "self-service"
    return "in IVR"


def replay(flow: Flow, call: StoredCall) -> Replayed:
    """Run one stored call's inputs through ``flow``; never raises (an engine error is
    an outcome of its own, ``error``)."""
    visited: set[str] = set()
    try:
        _, session = start(flow, call.call_id, call.caller, call.called, call.started_at)
        visited |= _nodes(session)
        for at, event in call.inputs:
            if session.status != "active":
                break
            _, session = step(flow, session, event, at)
            visited |= _nodes(session)
    except Exception:
        log.exception("replay failed", extra={"call_id": call.call_id, "flow": flow.id})
        return Replayed("error", visited)
    return Replayed(outcome_of(session), visited)


def _nodes(session: Session) -> set[str]:
    found = {t["node"] for t in session.trail if t.get("node")}
    if session.node:
        found.add(session.node)
    return found


def stored_calls(store: Any, flow_id: str, since: float) -> list[StoredCall]:
    """The calls of ``flow_id`` started since ``since`` (epoch seconds) with their inputs."""
    calls = []
    for session in store.sessions_since(since):
        if session.flow_id != flow_id or session.started_at.timestamp() < since:
            continue
        inputs = []
        for e in store.events(session.call_id):
            if e.get("kind") != "input":
                continue
            at = dt.datetime.fromisoformat(e["at"])
            inputs.append((e.get("turn", 0), at, CallerInput(
                e.get("digits"), e.get("speech"), e.get("confidence"))))
        inputs.sort(key=lambda x: x[0])
        calls.append(StoredCall(session.call_id, flow_id, str(session.data.get("caller", "")),
                                str(session.data.get("called", "")), session.started_at,
                                tuple((at, ev) for _, at, ev in inputs), outcome_of(session)))
    return calls


def impact(published: Flow, draft: Flow, calls: Iterable[StoredCall],
           changed_limit: int = 200) -> dict[str, Any]:
    """Counts of outcomes under the published version and the draft, the calls whose
    outcome changes, and the draft's nodes no stored call reaches."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    changed: list[dict[str, Any]] = []
    reached: set[str] = set()
    total = changed_count = 0
    for call in calls:
        total += 1
        old, new = replay(published, call), replay(draft, call)
        before[old.outcome] += 1
        after[new.outcome] += 1
        reached |= new.visited
        if old.outcome != new.outcome:
            changed_count += 1
        if old.outcome != new.outcome and len(changed) < changed_limit:
            changed.append({
                "call_id": call.call_id, "caller": redact_phone(call.caller),
                "started_at": call.started_at.isoformat(), "before": old.outcome,
                "after": new.outcome,
                "inputs": [ev.speech or ev.digits or "(silence)" for _, ev in call.inputs]})
    own = [n for n in draft.nodes if n != HUMAN_NODE and "/" not in n]
    unreached = [n for n in own if n not in reached]
    outcomes = sorted(set(before) | set(after))
    return {
        "calls": total,
        "rows": [{"outcome": o, "published": before[o], "draft": after[o],
                  "change": after[o] - before[o]} for o in outcomes],
        "published": dict(before), "draft": dict(after),
        "changed": changed, "changed_count": changed_count,
        "unreached": unreached,
        "new_unreached": [n for n in unreached if n not in published.nodes],
    }
