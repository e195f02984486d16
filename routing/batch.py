"""Several agents and several calls at once: an optimal assignment, and greedy.

The objective, in order of importance:

1. serve as many calls as possible, and among the ways to do so, the most
   urgent ones: calls sets are compared by urgency order (the callable sets of
   calls form a transversal matroid, so adding calls in urgency order whenever
   the set stays matchable gives a set that is best at every rank);
2. then the highest total fit score over the pairs;
3. then the longest-idle agents.

Step 1 uses augmenting paths; step 2-3 a maximum-weight matching
(``networkx.max_weight_matching`` with integer weights; SciPy's
``linear_sum_assignment`` for large batches, which finds the same optimum).
Inputs are plain ids and scores, so the router, the tests' oracle and the
benchmark share this code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

Edges = Mapping[str, Mapping[str, float]]  # call id -> {agent id: fit score}; absent = ineligible

_SCIPY_ABOVE = 4_000  # pairs (calls x agent slots) above which SciPy solves step 2


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Pairs chosen (call id -> agent id) and the objective's parts."""

    pairs: dict[str, str]
    served: tuple[str, ...]  # calls served, in urgency order

    def total_fit(self, edges: Edges) -> float:
        return sum(edges[c][a] for c, a in self.pairs.items())


def _slots(agents: Mapping[str, int]) -> list[tuple[str, int]]:
    return [(a, i) for a, n in agents.items() for i in range(n)]


def _servable(calls: Sequence[str], agents: Mapping[str, int], edges: Edges) -> list[str]:
    """Calls in urgency order, kept when they can be added to a matching (augmenting paths)."""
    owner: dict[tuple[str, int], str] = {}  # agent slot -> call
    served: list[str] = []
    for root in calls:
        if not edges.get(root):
            continue
        # iterative DFS for an augmenting path from `root`
        parent: dict[tuple[str, int], tuple[str, int] | None] = {}
        seen: set[tuple[str, int]] = set()
        stack: list[tuple[str, tuple[str, int] | None]] = [(root, None)]
        end: tuple[str, int] | None = None
        while stack and end is None:
            call, via = stack.pop()
            for agent in edges.get(call, {}):
                for i in range(agents.get(agent, 0)):
                    slot = (agent, i)
                    if slot in seen:
                        continue
                    seen.add(slot)
                    parent[slot] = via
                    if slot not in owner:
                        end = slot
                        break
                    stack.append((owner[slot], slot))
                if end is not None:
                    break
        if end is None:
            continue
        # flip the path: each slot on it takes the call that reached it
        cur: tuple[str, int] | None = end
        while cur is not None:
            prev = parent[cur]
            owner[cur] = root if prev is None else owner[prev]
            cur = prev
        served.append(root)
    return served


def solve_batch(
    calls: Sequence[str],
    agents: Mapping[str, int],
    edges: Edges,
    idle_rank: Mapping[str, int] | None = None,
) -> BatchResult:
    """Optimal assignment (see the module doc).

    ``calls`` are in urgency order (most urgent first); ``agents`` maps agent
    id -> free slots; ``edges[call][agent]`` is the agent's fit score for the
    call (eligible pairs only); ``idle_rank[agent]`` is larger for longer idle.
    """
    served = _servable(calls, agents, edges)
    if not served:
        return BatchResult({}, ())
    idle_rank = idle_rank or {}
    slots = [s for s in _slots(agents) if any(s[0] in edges[c] for c in served)]
    n = len(slots)
    tie = (max(idle_rank.values(), default=0) + 1) * (len(served) + 1)

    def weight(c: str, a: str) -> int:
        return round(edges[c][a] * 1000) * tie + idle_rank.get(a, 0)

    pairs: dict[str, str] = {}
    if len(served) * n > _SCIPY_ABOVE:
        import numpy as np
        from scipy.optimize import linear_sum_assignment

        big = float(2**50)
        w = np.full((len(served), n), -big)
        for i, c in enumerate(served):
            for j, (a, _) in enumerate(slots):
                if a in edges[c]:
                    w[i, j] = float(weight(c, a))
        # every served call must be matched: an ineligible pair costs more than any gain
        rows, cols = linear_sum_assignment(w, maximize=True)
        for i, j in zip(rows, cols, strict=True):
            pairs[served[i]] = slots[j][0]
        return BatchResult(pairs, tuple(served))

    g = nx.Graph()
    for c in served:
        for a, i in slots:
            if a in edges[c]:
                g.add_edge(("c", c), ("a", a, i), weight=weight(c, a))
    for u, v in nx.max_weight_matching(g, maxcardinality=True):
        if u[0] == "a":
            u, v = v, u
        pairs[u[1]] = v[1]
    return BatchResult(pairs, tuple(served))


def solve_greedy(
    calls: Sequence[str],
    agents: Mapping[str, int],
    edges: Edges,
    idle_rank: Mapping[str, int] | None = None,
) -> BatchResult:
    """Each call in urgency order takes its best remaining agent (the baseline)."""
    idle_rank = idle_rank or {}
    left = dict(agents)
    pairs: dict[str, str] = {}
    for c in calls:
        options = [a for a in edges.get(c, {}) if left.get(a, 0) > 0]
        if not options:
            continue
        a = max(options, key=lambda x: (edges[c][x], idle_rank.get(x, 0), x))
        left[a] -= 1
        pairs[c] = a
    return BatchResult(pairs, tuple(c for c in calls if c in pairs))
