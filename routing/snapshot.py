"""Snapshots of a router as plain data, and the consistency check used after a restore.

A snapshot holds agents, calls, counters and decision history; the indexes and
timers are derived again from them on restore, so they can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing.counters import QueueCounters
from routing.errors import InvalidTransitionError
from routing.models import Agent, Call, CallState, SlotState
from routing.policy import RoutingPolicy, parse_policy
from routing.state import RouterState


def to_dict(r: RouterState, *, history: bool = True) -> dict[str, Any]:
    """The router's whole state as plain data (JSON-able). ``history=False`` leaves
    out the decision log (kept elsewhere, e.g. stored decision by decision)."""
    log = r._log.to_dict() if history else {"seq": r._log.seq, "history": {}, "finished": []}
    return {
        "policy": r.policy.model_dump(mode="json"),
        "agents": [a.as_dict() for a in r.agents.values()],
        "calls": [c.as_dict() for c in r.calls.values()],
        "call_seq": r._call_seq,
        "counters": {q: c.as_dict() for q, c in r._counters.items()},
        **log,  # seq, history, finished
    }


def policy_of(data: Mapping[str, Any]) -> RoutingPolicy:
    """The routing policy a snapshot was taken under."""
    return parse_policy(data["policy"], "<snapshot policy>")


def restore(r: RouterState, data: Mapping[str, Any]) -> None:
    """Fill a new, empty state with a :func:`to_dict` snapshot's agents, calls, counters
    and log; the router then re-derives its indexes and timers from them, so a snapshot
    holds no derived state."""
    r._call_seq = data["call_seq"]
    stranded = sorted({c["queue"] for c in data["calls"]} - set(r.policy.queues))
    if stranded:
        raise InvalidTransitionError(
            f"snapshot: calls wait in queue(s) {', '.join(stranded)} that the policy no longer "
            "declares; keep those queues until the calls are done"
        )
    for q, c in data["counters"].items():
        if q in r._counters:  # statistics of a queue dropped from the policy are dropped too
            r._counters[q] = QueueCounters.from_dict(c)
    r._queue_info.clear()  # it holds the counters just replaced
    r._log.load(
        {
            "seq": data["seq"],
            "history": data.get("history", {}),
            "finished": data.get("finished", []),
        }
    )
    for ad in data["agents"]:
        a = Agent.from_dict(ad)
        r.agents[a.id] = a
    for cd in data["calls"]:
        c = Call.from_dict(cd)
        c.step = min(c.step, len(r.policy.queues[c.queue].relax))  # the policy may have fewer steps
        r.calls[c.id] = c


def check_invariants(r: RouterState) -> None:
    """Raise AssertionError if the router's state is inconsistent."""
    for a in r.agents.values():
        assert a.load <= a.capacity, f"agent {a.id}: {a.load} slots > capacity {a.capacity}"
        for cid, s in a.slots.items():
            if s is SlotState.WRAP_UP:
                continue
            c = r.calls.get(cid)
            assert c is not None and c.agent_id == a.id, f"agent {a.id}: slot {cid} not its call"
        assert r._index.is_free(a.id) == a.routable, f"agent {a.id}: index disagrees"
    for c in r.calls.values():
        if c.state in (CallState.RESERVED, CallState.CONNECTED):
            want = SlotState.RESERVED if c.state is CallState.RESERVED else SlotState.BUSY
            assert r.agents[c.agent_id].slots.get(c.id) is want, f"call {c.id}: agent slot"  # type: ignore[index]
        assert r._index.is_waiting(c.id) == (c.state is CallState.WAITING), f"call {c.id}: index"
