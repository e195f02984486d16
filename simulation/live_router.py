"""The production router (``routing.router.Router``) behind the simulator's port.

Intents map to policy queues (the scenario's ``routing_policy`` file, or one queue
per intent requiring its skills at any level). Offers are accepted at once: the
router runs with its public simulation options ``record_decisions=False`` (no
``explain`` records) and ``auto_accept=True`` (an offer is connected as it is
made, with no reservation timer and no ``accept`` round trip); with ``explain=True``
it runs with the live defaults and the adapter accepts every offer itself. A test
checks that both pair every call with the same agent at the same time. Wrap-up,
relaxation and overflow are the router's own timers, run through ``tick``. Agents
and calls are routed under string ids; the adapter keeps the integer indices of the
caller plan and roster.
"""

from __future__ import annotations

import numpy as np

from routing.models import Agent, AgentState, Call, DecisionKind
from routing.policy import QueueSpec, RoutingPolicy, load_policy
from routing.router import Router
from routing.scoring import is_eligible
from simulation.errors import ScenarioError
from simulation.roster import RosterAgent
from simulation.router_port import Assignment
from simulation.scenario import Scenario
from simulation.traffic import CallPlan

__all__ = ["LiveRouter", "scenario_policy"]

_OFFERED = DecisionKind.OFFERED


def scenario_policy(scenario: Scenario, plan: CallPlan) -> RoutingPolicy:
    """The scenario's routing policy, or one queue per intent (skills at any level)."""
    if scenario.routing_policy is not None:
        from routing.errors import PolicyError

        try:
            policy = load_policy(scenario.resolve(scenario.routing_policy))
        except PolicyError as exc:
            raise ScenarioError(scenario.source, "routing_policy", str(exc)) from None
        missing = sorted({it.queue_name for it in plan.intents} - set(policy.queues))
        if missing:
            raise ScenarioError(
                scenario.source,
                "intents",
                f"queue(s) {missing} are not in {scenario.routing_policy}",
            )
        _check_servable(scenario, policy, plan)
        return policy
    _check_skills(scenario, plan)
    queues = {
        it.queue_name: QueueSpec(skills={s: 1 for s in it.required_skills}, priority=0)
        for it in plan.intents
    }
    return RoutingPolicy(queues=queues, wrap_up_seconds=scenario.wrap_up_seconds)


def _check_skills(scenario: Scenario, plan: CallPlan) -> None:
    """Calls whose skills no staffed group has would vanish from the results: refuse them."""
    groups = [g.skill_levels for g in scenario.agents if g.may_staff]
    counts = np.bincount(plan.routed_intent, minlength=len(plan.intents)) if plan.size else None
    for k, it in enumerate(plan.intents):
        n = int(counts[k]) if counts is not None else 0
        if n and not any(all(s in g for s in it.required_skills) for g in groups):
            where = scenario.arrivals.replay or "intents"
            raise ScenarioError(
                scenario.source,
                "agents",
                f"{n} call(s) of {it.name!r} ({where}) need skill(s) {list(it.required_skills)}"
                " that no staffed agent group has all of: add them to a group's skills",
            )


def _check_servable(scenario: Scenario, policy: RoutingPolicy, plan: CallPlan) -> None:
    """Every intent's queue must accept some staffed agent group, at its most relaxed step."""
    staffed = [g for g in scenario.agents if g.may_staff]
    for k, it in enumerate(plan.intents):
        q = policy.queues[it.queue_name]
        req = policy.effective(it.queue_name, dict(q.skills), q.language, len(q.relax))
        if not any(is_eligible(g.skill_levels, frozenset(), req) for g in staffed):
            raise ScenarioError(
                scenario.source,
                f"intents.{k}",
                f"no agent group meets queue {it.queue_name!r} of {scenario.routing_policy} "
                f"({req.label()})",
            )


class LiveRouter:
    """Adapter: ``RouterPort`` over one fresh production ``Router``."""

    def __init__(
        self,
        scenario: Scenario,
        plan: CallPlan,
        roster: list[RosterAgent],
        *,
        explain: bool = False,
    ) -> None:
        policy = scenario_policy(scenario, plan)
        self.router = (
            Router(policy, history_limit=64)
            if explain
            else Router(policy, history_limit=0, record_decisions=False, auto_accept=True)
        )
        self._accepts = explain  # the live defaults: every offer waits for ``accept``
        self.roster = roster
        self.queues = [it.queue_name for it in plan.intents]
        self.priority = [it.priority for it in plan.intents]
        self.call_priority = plan.priority.tolist() if plan.priority is not None else None
        default_wrap = float(self.router.policy.wrap_up_seconds)
        self.wrap: list[float] = []
        for member in roster:
            w = scenario.agents[member.group].wrap_up_seconds
            self.wrap.append(default_wrap if w is None else float(w))
        self.agent_ids = [str(a.index) for a in roster]
        self.agent_index = {s: k for k, s in enumerate(self.agent_ids)}
        self.leg = [0] * plan.size  # transfers so far, for fresh router call ids
        self.ids = [str(k) for k in range(plan.size)]
        self.call_index: dict[str, int] = {}
        self.registered = [False] * len(roster)
        self.next_deadline = self.router.next_due  # RouterPort.next_deadline, without a hop
        # whether the router can ever set a timer: wrap-up, relaxation, overflow, or
        # offers waiting for accept (explain); when not, the loop never asks for deadlines
        self.timed = (
            explain
            or any(w > 0 for w in self.wrap)
            or any(
                spec.relax
                or (spec.max_wait_seconds is not None and spec.overflow_queue is not None)
                for spec in self.router.policy.queues.values()
            )
        )
        self._enqueue = self.router.enqueue_brief
        self._complete = self.router.complete

    def _accept(self, decisions, now: float) -> list[Assignment]:  # type: ignore[no-untyped-def]
        if not decisions:
            return []
        out: list[Assignment] = []
        accept = self.router.accept if self._accepts else None
        calls, agents = self.call_index, self.agent_index
        for d in decisions:
            if d.kind is _OFFERED:
                if accept is not None:
                    accept(d.call_id, d.agent_id, now)
                out.append((calls[d.call_id], agents[d.agent_id]))
        return out

    def add_call(self, call: int, intent: int) -> None:
        assert call == len(self.ids), "added calls are numbered after the plan's"
        self.leg.append(0)
        self.ids.append(str(call))
        if self.call_priority is not None:
            self.call_priority.append(self.priority[intent])

    def _rid(self, call: int) -> str:
        k = self.leg[call]
        return self.ids[call] if k == 0 else f"{call}.{k}"

    def login(self, agent: int, now: float) -> list[Assignment]:
        aid = self.agent_ids[agent]
        if not self.registered[agent]:
            self.registered[agent] = True
            a = self.roster[agent]
            rec = Agent(
                id=aid,
                skills=dict(a.skills),
                wrap_up_seconds=self.wrap[agent],
                presence=AgentState.AVAILABLE,
            )
            return self._accept(self.router.add_agent(rec, now), now)
        return self._accept(self.router.agent_available(aid, now), now)

    def logout(self, agent: int, now: float) -> None:
        self._accept(
            self.router.set_agent_state(self.agent_ids[agent], AgentState.OFFLINE, now), now
        )

    def enqueue(self, call: int, intent: int, now: float) -> list[Assignment]:
        k = self.leg[call]
        rid = self.ids[call] if k == 0 else f"{call}.{k}"
        self.call_index[rid] = call
        cp = self.call_priority
        prio = self.priority[intent] if cp is None else cp[call]
        agent = self._enqueue(Call.for_queue(rid, self.queues[intent], prio), now)
        if agent is None:
            return []
        if self._accepts:
            self.router.accept(rid, agent, now)
        return [(call, self.agent_index[agent])]

    def complete(self, call: int, agent: int, now: float) -> tuple[list[Assignment], float]:
        k = self.leg[call]
        rid = self.ids[call] if k == 0 else f"{call}.{k}"
        decisions = self._complete(rid, now)
        out = self._accept(decisions, now) if decisions else []
        del self.call_index[rid]
        self.leg[call] = k + 1  # a later enqueue of this call is a new leg (transfer)
        return out, self.wrap[agent]

    def abandon(self, call: int, now: float) -> list[Assignment]:
        rid = self._rid(call)
        out = self._accept(self.router.abandon(rid, now), now)
        del self.call_index[rid]
        return out

    def tick(self, now: float) -> list[Assignment]:
        return self._accept(self.router.tick(now), now)
