"""Real-time queue figures and the estimated wait, as records and pure functions.

Definitions (DESIGN.md's KPI meanings, counted since the router's last
``reset_stats``, e.g. midnight):

* service level = calls answered within the queue's threshold / calls offered
  whose outcome is known: answered, abandoned, overflowed out, or still
  waiting past the threshold (every abandon stays in the denominator);
* average wait (ASA) = mean wait of answered calls;
* abandonment = abandoned / offered to the queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from routing.counters import QueueCounters
from routing.errors import RoutingError
from routing.models import AgentState, CallState, Requirement
from routing.scoring import call_order_key, is_eligible
from routing.state import RouterState


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A queue right now. Times in seconds; ratios in [0, 1] (None: nothing to divide yet)."""

    queue: str
    time: float
    waiting: int
    longest_wait: float
    agents_staffed: int
    agents_available: int
    agents_busy: int
    offered: int
    answered: int
    abandoned: int
    overflowed: int
    service_level: float | None
    service_level_threshold: float
    average_wait: float | None
    abandonment_rate: float | None
    average_handle_time: float
    estimated_wait: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def service_level(c: QueueCounters, waiting_past_threshold: int) -> float | None:
    """Answered within threshold / offered calls with a known outcome (see module doc)."""
    known = c.answered + c.abandoned + c.overflowed + waiting_past_threshold
    return c.answered_in_sl / known if known else None


def average_handle_time(c: QueueCounters, prior: float, prior_weight: int = 5) -> float:
    """Mean of the recent handle times (talk + wrap-up), shrunk toward ``prior``
    while there are few of them (``prior`` counts as ``prior_weight`` calls)."""
    n = len(c.handle_times)
    return (sum(c.handle_times) + prior * prior_weight) / (n + prior_weight)


def estimate_wait(ahead: int, servers: int, free: int, aht: float) -> float | None:
    """Expected wait of a call with ``ahead`` calls before it.

    ``servers`` is the number of call slots of staffed eligible agents, ``free``
    how many of them are free now. With a free slot and nobody ahead the wait is
    0. Otherwise the call needs ``ahead + 1`` slots to free up; with all slots
    busy they free up at rate servers / aht (exact for exponential handle
    times, a good guide otherwise). None when nobody staffed can take the call.
    """
    if servers <= 0:
        return None
    if free > ahead:
        return 0.0
    return (ahead + 1 - free) * aht / servers


def estimated_wait(
    r: RouterState,
    now: float,
    *,
    call_id: str | None = None,
    queue: str | None = None,
    skills: Mapping[str, int] | None = None,
    language: str | None = None,
    priority: int = 0,
) -> float | None:
    """Expected seconds until an agent is offered the call.

    For a waiting ``call_id``: its remaining wait. For ``queue`` (with
    optional skills/language/priority, as the IVR would send): the wait of a
    call queued now. None when no staffed agent can ever take it.
    """
    if call_id is not None:
        call = r._call(call_id)
        if call.state is not CallState.WAITING:
            return 0.0
        req = r.requirement(call_id)
        key = r._key(call)
        queue_name = call.queue
    else:
        if queue is None:
            raise RoutingError(
                "estimated_wait: give call_id (a waiting call) or queue (a call about to queue)"
            )
        spec = r.policy.queue(queue)
        req = Requirement.of(
            skills or spec.skills, language if language is not None else spec.language
        )
        key = call_order_key(spec.priority + priority, now, r._call_seq + 1, r._aging)
        queue_name = queue
    g = r._index.group(req)
    ahead = sum(1 for e in r._index.waiting_in(g) if e[0] < key)
    servers = free = 0
    for agent in r.agents.values():
        if agent.presence is AgentState.AVAILABLE and is_eligible(
            agent.skills, agent.languages, req
        ):
            servers += agent.capacity
            free += agent.capacity - agent.load
    spec = r.policy.queues[queue_name]
    aht = average_handle_time(
        r._counters[queue_name], spec.handle_seconds or r.policy.handle_seconds
    )
    return estimate_wait(ahead, servers, free, aht)


def queue_stats(r: RouterState, queue: str, now: float) -> QueueStats:
    """Real-time figures of a queue (scans its agents: O(agents))."""
    spec = r.policy.queue(queue)
    c = r._counters[queue]
    waiting = [r.calls[i] for i in r._waiting[queue]]
    threshold = spec.service_level.threshold_seconds
    base = Requirement.of(spec.skills, spec.language)
    staffed = available = busy = 0
    for a in r.agents.values():
        if not is_eligible(a.skills, a.languages, base):
            continue
        if a.presence is AgentState.AVAILABLE or a.slots:
            staffed += 1
        if a.routable:
            available += 1
        if a.slots:
            busy += 1
    return QueueStats(
        queue=queue,
        time=now,
        waiting=sum(1 for w in waiting if w.state is CallState.WAITING),
        longest_wait=max((now - w.enqueued_at for w in waiting), default=0.0),
        agents_staffed=staffed,
        agents_available=available,
        agents_busy=busy,
        offered=c.offered,
        answered=c.answered,
        abandoned=c.abandoned,
        overflowed=c.overflowed,
        service_level=service_level(c, sum(1 for w in waiting if now - w.enqueued_at > threshold)),
        service_level_threshold=threshold,
        average_wait=c.wait_sum / c.answered if c.answered else None,
        abandonment_rate=c.abandoned / c.offered if c.offered else None,
        average_handle_time=average_handle_time(c, spec.handle_seconds or r.policy.handle_seconds),
        estimated_wait=estimated_wait(r, now, queue=queue),
    )
