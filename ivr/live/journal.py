"""Routing operations as small command records, and their exact replay.

Every change the live layer makes to the shared router goes through
:class:`RecordingRouter`, which writes the operation down as a :class:`Command`
(``op``, JSON ``args``, and the ``now`` it ran at) before running it. The router is pure
and time is an argument, so :func:`replay` of the same commands in the same order, on
the same starting state, gives the same router: that is what lets each process keep its
router in memory and only apply the records it has not seen.

A command runs at ``max(now, the journal's last now)``: hosts' clocks differ, and a
command from a host whose clock is behind must not move the router back in time. The
clamp is applied before the command is recorded, so replay sees the clamped time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from routing import Agent, AgentState, Call, Router, RoutingError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Command:
    """One routing operation: run ``op`` with ``args`` at ``now``."""

    op: str
    args: dict[str, Any]
    now: float


def _set_context(r: Router, call_id: str, key: str, value: Any) -> None:
    r._call(call_id).context[key] = value


#: op -> how to run it on a router from its recorded args and time.
_RUN: dict[str, Callable[[Router, Mapping[str, Any], float], Any]] = {
    "add_agent": lambda r, a, t: r.add_agent(Agent.from_dict(a["agent"]), t),
    "update_agent": lambda r, a, t: r.update_agent(
        a["agent_id"], t, skills=a.get("skills"), languages=a.get("languages"),
        capacity=a.get("capacity")),
    "remove_agent": lambda r, a, t: r.remove_agent(a["agent_id"], t),
    "agent_available": lambda r, a, t: r.agent_available(a["agent_id"], t),
    "agents_available": lambda r, a, t: r.agents_available(a["agent_ids"], t),
    "set_agent_state": lambda r, a, t: r.set_agent_state(a["agent_id"], a["state"], t),
    "enqueue": lambda r, a, t: r.enqueue(Call.from_dict(a["call"]), t),
    "enqueue_many": lambda r, a, t: r.enqueue_many([Call.from_dict(c) for c in a["calls"]], t),
    "offer_to": lambda r, a, t: r.offer_to(Call.from_dict(a["call"]), a["agent_id"], t,
                                           note=a.get("note", "")),
    "accept": lambda r, a, t: r.accept(a["call_id"], a["agent_id"], t),
    "reject": lambda r, a, t: r.reject(a["call_id"], a["agent_id"], t),
    "timeout": lambda r, a, t: r.timeout(a["call_id"], a["agent_id"], t),
    "release": lambda r, a, t: r.release(a["call_id"], a["agent_id"], t),
    "complete": lambda r, a, t: r.complete(a["call_id"], t),
    "abandon": lambda r, a, t: r.abandon(a["call_id"], t),
    "tick": lambda r, a, t: r.tick(t),
    "rebalance": lambda r, a, t: r.rebalance(t, trigger=a.get("trigger", "batch")),
    "reset_stats": lambda r, a, t: r.reset_stats(),
    "set_context": lambda r, a, t: _set_context(r, a["call_id"], a["key"], a["value"]),
}
OPS = frozenset(_RUN)
#: Router methods that change nothing: the only ones RecordingRouter passes through
#: unrecorded (a test checks that RecordingRouter records every other public method).
READS = frozenset({"prepare", "next_due", "explain", "requirement", "estimated_wait", "stats",
                   "to_dict", "from_dict", "check_invariants", "watch"})


def run(router: Router, command: Command) -> Any:
    """Run one command on ``router``; a routing error is raised as it was the first time."""
    return _RUN[command.op](router, command.args, command.now)


def replay(router: Router, commands: Iterable[Command]) -> Router:
    """Apply recorded commands in order. A command that raised a routing error when it
    was recorded raises it again here, with the same (lack of) effect, and is skipped."""
    for c in commands:
        try:
            run(router, c)
        except RoutingError:
            pass
    return router


class RecordingRouter:
    """The router as the live layer changes it: each operation is recorded (through
    ``record``, which returns the time to run at, clamped) and then run. Reads
    (``calls``, ``agents``, ``policy``, ``stats``...) go straight to the router; changing
    a call's context goes through :meth:`set_context` so that it is recorded too."""

    def __init__(self, router: Router, record: Callable[[str, dict[str, Any], float], float]
                 ) -> None:
        self._router = router
        self._record = record

    def __getattr__(self, name: str) -> Any:
        if callable(getattr(type(self._router), name, None)) and not (
                name.startswith("_") or name in READS):
            raise AttributeError(f"Router.{name} is not a journaled operation: add it to "
                                 "ivr.live.journal before the live layer calls it")
        return getattr(self._router, name)

    def _do(self, op: str, args: dict[str, Any], now: float) -> Any:
        t = self._record(op, args, float(now))
        return _RUN[op](self._router, args, t)

    def add_agent(self, agent: Agent, now: float) -> Any:
        return self._do("add_agent", {"agent": agent.as_dict()}, now)

    def update_agent(self, agent_id: str, now: float, *, skills: Mapping[str, int] | None = None,
                     languages: Iterable[str] | None = None, capacity: int | None = None) -> Any:
        args: dict[str, Any] = {"agent_id": agent_id}
        if skills is not None:
            args["skills"] = dict(skills)
        if languages is not None:
            args["languages"] = sorted(languages)
        if capacity is not None:
            args["capacity"] = capacity
        return self._do("update_agent", args, now)

    def remove_agent(self, agent_id: str, now: float) -> Any:
        return self._do("remove_agent", {"agent_id": agent_id}, now)

    def agent_available(self, agent_id: str, now: float) -> Any:
        return self._do("agent_available", {"agent_id": agent_id}, now)

    agent_freed = agent_available

    def agents_available(self, agent_ids: Iterable[str], now: float) -> Any:
        return self._do("agents_available", {"agent_ids": list(agent_ids)}, now)

    def set_agent_state(self, agent_id: str, state: AgentState | str, now: float) -> Any:
        value = state.value if isinstance(state, AgentState) else str(state)
        return self._do("set_agent_state", {"agent_id": agent_id, "state": value}, now)

    def enqueue(self, call: Call, now: float) -> Any:
        return self._do("enqueue", {"call": call.as_dict()}, now)

    def enqueue_brief(self, call: Call, now: float) -> str | None:
        """Journaled as ``enqueue`` (it changes the router exactly as that does)."""
        return self._do("enqueue", {"call": call.as_dict()}, now).agent_id  # type: ignore[no-any-return]

    def enqueue_many(self, calls: Iterable[Call], now: float) -> Any:
        return self._do("enqueue_many", {"calls": [c.as_dict() for c in calls]}, now)

    def offer_to(self, call: Call, agent_id: str, now: float, note: str = "") -> Any:
        return self._do("offer_to", {"call": call.as_dict(), "agent_id": agent_id,
                                     "note": note}, now)

    def accept(self, call_id: str, agent_id: str, now: float) -> Any:
        return self._do("accept", {"call_id": call_id, "agent_id": agent_id}, now)

    def reject(self, call_id: str, agent_id: str, now: float) -> Any:
        return self._do("reject", {"call_id": call_id, "agent_id": agent_id}, now)

    def release(self, call_id: str, agent_id: str, now: float) -> Any:
        return self._do("release", {"call_id": call_id, "agent_id": agent_id}, now)

    def timeout(self, call_id: str, agent_id: str, now: float) -> Any:
        return self._do("timeout", {"call_id": call_id, "agent_id": agent_id}, now)

    def complete(self, call_id: str, now: float) -> Any:
        return self._do("complete", {"call_id": call_id}, now)

    def abandon(self, call_id: str, now: float) -> Any:
        return self._do("abandon", {"call_id": call_id}, now)

    def tick(self, now: float) -> Any:
        return self._do("tick", {}, now)

    def rebalance(self, now: float, *, trigger: str = "batch") -> Any:
        return self._do("rebalance", {"trigger": trigger}, now)

    def reset_stats(self) -> None:
        self._do("reset_stats", {}, float("-inf"))

    def set_context(self, call_id: str, key: str, value: Any) -> None:
        """Set ``call.context[key]`` (JSON-able ``value``), recorded like any operation."""
        self._do("set_context", {"call_id": call_id, "key": key, "value": value}, float("-inf"))

    def watch(self, listener: Any) -> None:
        raise RoutingError("watch: the routing store owns the decision listener")
