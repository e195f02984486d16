"""The router's state: agents, calls, the indexes over them, counters and the decision log.

:class:`RouterState` holds what a router knows and the read-only questions about it;
:class:`routing.router.Router` adds the operations that change it. Snapshots
(``routing.snapshot``) and statistics (``routing.stats``) depend on this state, never on
the router's operations.
"""

from __future__ import annotations

from routing.counters import QueueCounters
from routing.decisions import DecisionLog
from routing.errors import UnknownAgentError, UnknownCallError
from routing.index import Group, RoutingIndex
from routing.models import Agent, Call, Requirement
from routing.policy import QueueSpec, RoutingPolicy, did_you_mean
from routing.scoring import call_order_key
from routing.timers import TimerQueue

QueueInfo = tuple[QueueSpec, QueueCounters, set[str], float, bool]


class RouterState:
    """What a router knows. Not thread-safe: one owner at a time."""

    def __init__(
        self,
        policy: RoutingPolicy | None = None,
        *,
        history_limit: int = 10_000,
        record_decisions: bool = True,
        auto_accept: bool = False,
    ) -> None:
        """``history_limit``: finished calls whose decisions ``explain`` keeps.
        ``record_decisions=False`` (simulations): decisions carry only seq, time,
        call, queue, kind, trigger and agent, and nothing is kept for ``explain``.
        ``auto_accept=True`` (simulations): every offer is accepted at once, at the
        time it is made: an ``offered`` decision comes back with its call already
        connected (no reservation timer, no ``accept`` to call). The agents and times
        are those of a driver that calls ``accept`` on every offer as it comes."""
        self.policy = policy or RoutingPolicy.default()
        self.history_limit = history_limit
        self.record_decisions = record_decisions
        self.auto_accept = auto_accept
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}  # active calls: waiting, reserved, connected
        self._index = RoutingIndex(self.agents, self.policy.scoring.weight)
        self._timers = TimerQueue()
        self._log = DecisionLog(history_limit)
        self._call_seq = 0
        self._excluded_by: dict[str, set[str]] = {}
        self._counters: dict[str, QueueCounters] = {q: QueueCounters() for q in self.policy.queues}
        self._waiting: dict[str, set[str]] = {q: set() for q in self.policy.queues}
        self._aging = self.policy.priority_aging.seconds_per_level
        self._step_labels: dict[tuple[str, int], str] = {}
        self._reqs: dict[str, tuple[str, int, Group]] = {}  # call id -> (queue, step, its group)
        self._effective: dict[tuple[str, tuple[tuple[str, int], ...], str | None, int], Group] = {}
        self._queue_groups: dict[str, Group] = {}  # queue -> group of its skills and language
        # per queue, from the (frozen) policy: service-level threshold; has queue timers
        self._threshold = {
            q: spec.service_level.threshold_seconds for q, spec in self.policy.queues.items()
        }
        self._timed = {
            q
            for q, spec in self.policy.queues.items()
            if spec.relax or (spec.max_wait_seconds is not None and spec.overflow_queue is not None)
        }
        # per queue: the above in one tuple (built on first use; a snapshot's restore,
        # which replaces counters, clears it)
        self._queue_info: dict[str, QueueInfo] = {}

    def _info_of(self, queue: str) -> QueueInfo:
        """What the hot paths read of a queue, in one lookup (``_queue_info``, cached):
        spec, counters, waiting call ids, service-level threshold, whether it sets timers.
        An unknown queue raises the policy's error."""
        spec = self.policy.queue(queue)
        info = self._queue_info[queue] = (
            spec,
            self._counters[queue],
            self._waiting[queue],
            self._threshold[queue],
            queue in self._timed,
        )
        return info

    def requirement(self, call_id: str) -> Requirement:
        """The call's requirement now (after the relaxation steps in force)."""
        return self._req_of(self._call(call_id))

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise UnknownAgentError(
                f"agent {agent_id!r}: not registered{did_you_mean(agent_id, self.agents)}; "
                "add it with add_agent"
            ) from None

    def _call(self, call_id: str) -> Call:
        try:
            return self.calls[call_id]
        except KeyError:
            done = " (it already ended)" if self._log.ended(call_id) else ""
            raise UnknownCallError(f"call {call_id!r}: not in the router{done}") from None

    def _key(self, call: Call) -> tuple[float, float, int]:
        prio = self.policy.queues[call.queue].priority + call.priority
        return call_order_key(prio, call.enqueued_at, call.seq, self._aging)

    def _group_of(self, call: Call) -> Group:
        """The index group of the call's requirement now (cached per call and per kind of call)."""
        hit = self._reqs.get(call.id)
        if hit is not None and hit[0] == call.queue and hit[1] == call.step:
            return hit[2]
        # (a tuple of the items: calls of a queue list its skills in one order, and
        # another order only costs one more cache entry for the same group)
        key = (call.queue, tuple(call.skills.items()), call.language, call.step)
        g = self._effective.get(key)
        if g is None:
            if len(self._effective) > 50_000:
                self._effective.clear()
            req = self.policy.effective(call.queue, call.skills, call.language, call.step)
            g = self._effective[key] = self._index.group(req)
        self._reqs[call.id] = (call.queue, call.step, g)
        return g

    def _req_of(self, call: Call) -> Requirement:
        return self._group_of(call).req

    def _step_label(self, queue: str, step: int) -> str:
        label = self._step_labels.get((queue, step))
        if label is None:
            label = self._step_labels[(queue, step)] = self.policy.step_label(queue, step)
        return label
