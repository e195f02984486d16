"""Indexes that let the router decide without scanning agents or calls.

Calls are grouped by their *effective requirement* (skills with minimum
levels, and language, after relaxation). Each :class:`Group` holds

* a heap of the free (routable) agents eligible for it, keyed by
  (-fit score, idle since, agent id): the top is the best fit, longest idle;
* a heap of its waiting calls, keyed by :func:`routing.scoring.call_order_key`.

Groups are registered under an *anchor* skill (their first required skill), so
the groups an agent can serve are found from the agent's own few skills; that
list, with the agent's score in each, is cached per agent until a new group
appears. Heaps use lazy deletion: each agent and call has a version stamp, and
entries with an old stamp are dropped when they surface, or by
:meth:`RoutingIndex.compact` (run from the router's ``tick``, off the decision
path) once they outnumber the live ones.

In a contact center the number of distinct effective requirements is small
(queues x relaxation steps x languages), so an agent belongs to a few dozen
groups at most; a decision then costs O(groups of the agent + log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

from routing.models import Agent, Candidate, Requirement
from routing.scoring import Weight, fit_score, is_eligible

AgentEntry = tuple[float, float, str, int]  # (-score, idle_since, agent id, version)
CallEntry = tuple[tuple[float, float, int], str, int]  # (order key, call id, version)


@dataclass(eq=False, slots=True)
class Group:
    """Free eligible agents and waiting calls of one effective requirement."""

    req: Requirement
    label: str = ""
    agents: list[AgentEntry] = field(default_factory=list)
    live_agents: int = 0
    calls: list[CallEntry] = field(default_factory=list)
    live_calls: int = 0


class RoutingIndex:
    """Groups, agent heaps and call heaps, kept in step with agent and call changes."""

    def __init__(self, agents: dict[str, Agent], weight: Weight) -> None:
        self._agents = agents  # shared with the router, read only here
        self._weight = weight
        self._groups: dict[Requirement, Group] = {}
        self._by_anchor: dict[str | None, list[Group]] = {}
        self._agent_ver: dict[str, int] = {}
        # free agents -> the groups holding their live entry (= their cached group list)
        self._agent_in: dict[str, list[tuple[Group, float]]] = {}
        self._cache: dict[str, list[tuple[Group, float]]] = {}
        self._call_ver: dict[str, int] = {}
        self._call_in: dict[str, Group] = {}  # waiting call -> its group (len: calls waiting)
        self._stale = 0  # heap entries made stale since the last compaction
        self._by_skill: dict[str, set[str]] = {}  # skill -> ids of agents who have it
        self._noted: dict[str, tuple[str, ...]] = {}  # agent id -> skills as noted

    # -- groups ------------------------------------------------------------------
    def group(self, req: Requirement) -> Group:
        """The group of ``req``, created (and filled with free eligible agents) on first use."""
        g = self._groups.get(req)
        if g is not None:
            return g
        g = Group(req, label=req.label())
        self._groups[req] = g
        anchor = req.skills[0][0] if req.skills else None
        self._by_anchor.setdefault(anchor, []).append(g)
        # one scan of the agents with the rarest required skill: extend cached group
        # lists, fill the heap with the free agents
        pools: list[set[str]] = [self._by_skill.get(sk, set()) for sk, _ in req.skills]
        ids: Iterable[str]
        if pools:
            rarest: set[str] = min(pools, key=len)
            ids = rarest
        else:
            ids = list(self._agents)
        for aid in ids:
            agent = self._agents[aid]
            if not is_eligible(agent.skills, agent.languages, req):
                continue
            score = fit_score(agent.skills, req, self._weight)
            cached = self._cache.get(aid)
            if cached is not None:
                cached.append((g, score))
            if aid in self._agent_in:  # free: its member list is its cached list, extended above
                g.agents.append((-score, agent.idle_since, aid, self._agent_ver[aid]))
                g.live_agents += 1
        heapq.heapify(g.agents)
        return g

    @property
    def groups(self) -> Iterable[Group]:
        return self._groups.values()

    def groups_of(self, agent: Agent) -> list[tuple[Group, float]]:
        """Groups the agent is eligible for, with its fit score in each (cached)."""
        hit = self._cache.get(agent.id)
        if hit is not None:
            return hit
        out: list[tuple[Group, float]] = []
        anchors: list[str | None] = [*agent.skills, None]
        for anchor in anchors:
            for g in self._by_anchor.get(anchor, ()):
                if is_eligible(agent.skills, agent.languages, g.req):
                    out.append((g, fit_score(agent.skills, g.req, self._weight)))
        self._cache[agent.id] = out
        return out

    def note_agent(self, agent: Agent) -> None:
        """Register a new agent, or its changed skills (call :meth:`forget_agent` first)."""
        self._unnote(agent.id)
        for skill in agent.skills:
            self._by_skill.setdefault(skill, set()).add(agent.id)
        self._noted[agent.id] = tuple(agent.skills)

    def _unnote(self, agent_id: str) -> None:
        for skill in self._noted.pop(agent_id, ()):
            self._by_skill[skill].discard(agent_id)

    def forget_agent(self, agent_id: str, *, removed: bool = False) -> None:
        """Drop an agent's cached group list (its skills or languages changed, or it left)."""
        self.agent_leaves(agent_id)
        self._cache.pop(agent_id, None)
        if removed:
            self._unnote(agent_id)

    # -- agents ------------------------------------------------------------------
    def agent_joins(self, agent: Agent) -> None:
        """The agent is (still) free for one more call: (re)enter its groups' heaps."""
        aid = agent.id
        if aid in self._agent_in:
            self.agent_leaves(aid)
        ver = self._agent_ver.get(aid, 0) + 1
        self._agent_ver[aid] = ver
        push = heapq.heappush
        idle = agent.idle_since
        groups = self._cache.get(aid) or self.groups_of(agent)
        for g, score in groups:
            push(g.agents, (-score, idle, aid, ver))
            g.live_agents += 1
        self._agent_in[aid] = groups

    def agent_leaves(self, agent_id: str) -> None:
        """The agent can take no more calls: its heap entries become stale."""
        members = self._agent_in.pop(agent_id, None)
        if members is None:
            return
        self._agent_ver[agent_id] = self._agent_ver.get(agent_id, 0) + 1
        pop = heapq.heappop
        for g, _ in members:
            g.live_agents -= 1
            heap = g.agents
            if heap and heap[0][2] == agent_id:  # often on top (it was just chosen): drop it now
                pop(heap)
        self._stale += len(members)
        if self._stale > 1_000_000:  # nobody calls compact(): keep memory bounded anyway
            self.compact()

    def compact(self, every: int = 20_000) -> None:
        """Drop stale heap entries, in the groups where they outnumber the live ones,
        once ``every`` entries went stale since the last time (housekeeping, off the
        decision path: the router runs it from ``tick``)."""
        if self._stale < every:
            return
        self._stale = 0
        for g in self._groups.values():
            if len(g.agents) > 2 * g.live_agents + 32:
                self._compact_agents(g)
            if len(g.calls) > 2 * g.live_calls + 32:
                self._compact_calls(g)

    def _compact_calls(self, g: Group) -> None:
        ver = self._call_ver
        g.calls = [e for e in g.calls if ver.get(e[1]) == e[2] and self._call_in.get(e[1]) is g]
        heapq.heapify(g.calls)

    def is_free(self, agent_id: str) -> bool:
        return agent_id in self._agent_in

    def _compact_agents(self, g: Group) -> None:
        ver = self._agent_ver
        g.agents = [e for e in g.agents if ver.get(e[2]) == e[3] and e[2] in self._agent_in]
        heapq.heapify(g.agents)

    def best_two(self, g: Group, excluded: set[str]) -> list[Candidate]:
        """The best free agent of the group and the runner-up (fewer if there are fewer).

        Fast path: drop stale entries from the top, then the runner-up is the
        smaller of the top's two children when that entry is live; otherwise
        (and when some agents are excluded) fall back to :meth:`best_agents`.
        """
        heap = g.agents
        ver = self._agent_ver
        free = self._agent_in
        while heap:
            e = heap[0]
            if ver.get(e[2]) == e[3] and e[2] in free:
                break
            heapq.heappop(heap)
        if not heap:
            return []
        if excluded:
            return self.best_agents(g, 2, excluded)
        top = heap[0]
        n = len(heap)
        if n == 1:
            return [Candidate(top[2], -top[0], top[1])]
        second = heap[1] if n == 2 or heap[1] < heap[2] else heap[2]
        if ver.get(second[2]) == second[3] and second[2] in free:
            return [Candidate(top[2], -top[0], top[1]), Candidate(second[2], -second[0], second[1])]
        return self.best_agents(g, 2, excluded)

    def best_agent(self, g: Group, excluded: set[str]) -> str | None:
        """Id of the best free agent of the group not in ``excluded`` (the first of
        :meth:`best_two`), or None; stale entries on top are dropped."""
        heap = g.agents
        ver = self._agent_ver
        free = self._agent_in
        while heap:
            e = heap[0]
            aid = e[2]
            if ver.get(aid) == e[3] and aid in free:
                if excluded and aid in excluded:
                    found = self.best_agents(g, 1, excluded)
                    return found[0].agent_id if found else None
                return aid
            heapq.heappop(heap)
        return None

    def best_agents(self, g: Group, k: int, excluded: set[str]) -> list[Candidate]:
        """Up to ``k`` best free agents of the group, skipping ``excluded`` (heap unchanged)."""
        heap = g.agents
        ver = self._agent_ver
        taken: list[AgentEntry] = []
        out: list[Candidate] = []
        while heap and len(out) < k:
            e = heap[0]
            if ver.get(e[2]) != e[3] or e[2] not in self._agent_in:
                heapq.heappop(heap)  # stale
                continue
            heapq.heappop(heap)
            taken.append(e)
            if e[2] not in excluded:
                out.append(Candidate(e[2], -e[0], e[1]))
        for e in taken:
            heapq.heappush(heap, e)
        return out

    def live_agent_ids(self, g: Group) -> list[str]:
        """Every free agent of the group (a scan: for explanations and batches only)."""
        ver = self._agent_ver
        return [e[2] for e in g.agents if ver.get(e[2]) == e[3] and e[2] in self._agent_in]

    # -- calls -------------------------------------------------------------------
    def call_waits(self, call_id: str, g: Group, key: tuple[float, float, int]) -> Group:
        """Put a waiting call in a group (moving it if it was elsewhere)."""
        self.call_leaves(call_id)
        ver = self._call_ver.get(call_id, 0) + 1
        self._call_ver[call_id] = ver
        heapq.heappush(g.calls, (key, call_id, ver))
        g.live_calls += 1
        self._call_in[call_id] = g
        return g

    def call_leaves(self, call_id: str) -> None:
        g = self._call_in.pop(call_id, None)
        if g is None:
            return
        self._call_ver[call_id] += 1
        g.live_calls -= 1
        if g.calls and g.calls[0][1] == call_id:  # the oldest leave first: keep the top clean
            heapq.heappop(g.calls)
        if g.live_calls == 0:
            g.calls.clear()
        else:
            self._stale += 1

    def forget_call(self, call_id: str) -> None:
        if call_id in self._call_in:
            self.call_leaves(call_id)
        self._call_ver.pop(call_id, None)

    def is_waiting(self, call_id: str) -> bool:
        return call_id in self._call_in

    def waiting_group(self, call_id: str) -> Group | None:
        return self._call_in.get(call_id)

    def best_call(
        self, agent: Agent, excluded_by: dict[str, set[str]]
    ) -> tuple[str, Group, float] | None:
        """The waiting call the agent should take next: smallest order key among the
        calls of the agent's groups (skipping calls that excluded the agent).
        Returns (call id, group, agent's score) or None."""
        if not self._call_in:  # no call waits anywhere
            return None
        best: tuple[tuple[float, float, int], str, Group, float] | None = None
        aid = agent.id
        for g, score in self.groups_of(agent):
            if not g.live_calls:
                continue
            top = self._top_call(g, aid, excluded_by)
            if top is not None and (best is None or top[0] < best[0]):
                best = (top[0], top[1], g, score)
        return None if best is None else (best[1], best[2], best[3])

    def _top_call(
        self, g: Group, agent_id: str, excluded_by: dict[str, set[str]]
    ) -> CallEntry | None:
        heap = g.calls
        ver = self._call_ver
        skipped: list[CallEntry] = []
        found: CallEntry | None = None
        while heap:
            e = heap[0]
            if ver.get(e[1]) != e[2]:
                heapq.heappop(heap)
                continue
            ex = excluded_by.get(e[1])
            if ex and agent_id in ex:
                skipped.append(heapq.heappop(heap))
                continue
            found = e
            break
        for e in skipped:
            heapq.heappush(heap, e)
        return found

    def waiting_in(self, g: Group) -> list[CallEntry]:
        """Live call entries of a group, in order (a scan: batches and stats only)."""
        ver = self._call_ver
        return sorted(e for e in g.calls if ver.get(e[1]) == e[2] and self._call_in.get(e[1]) is g)
