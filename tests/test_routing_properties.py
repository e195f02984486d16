"""Property tests against brute-force oracles (hypothesis).

* Whatever happens (arrivals, accepts, rejects, timeouts, completions,
  abandons, breaks, shift starts, time passing), the agent chosen for a new
  call is the oracle's: eligible, free, not excluded, no eligible agent scores
  higher, ties to the longest idle. A freed agent takes the oracle's call.
  Nobody is ever over capacity, no call is lost, and no call waits while a
  free agent could take it.
* The batch assignment is the optimum of an exhaustive search, and never worse
  than greedy.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from routing import Agent, AgentState, Call, CallState, DecisionKind, Router
from routing import batch as batch_mod
from routing.batch import solve_batch, solve_greedy
from routing.models import Requirement
from routing.policy import RoutingPolicy, parse_policy
from routing.scoring import call_order_key, fit_score, is_eligible

SKILLS = ["a", "b", "c"]


def make_policy(aging: float | None) -> RoutingPolicy:
    return parse_policy(
        {
            "queues": {
                "qa": {"skills": {"a": 2}, "relax": [{"after_seconds": 10, "min_level": 1}]},
                "qab": {
                    "skills": {"a": 1, "b": 2},
                    "priority": 1,
                    "relax": [{"after_seconds": 20, "any_language": True}],
                },
                "qc": {
                    "skills": {"c": 3},
                    "language": "en",
                    "relax": [
                        {"after_seconds": 5, "min_level": 2},
                        {"after_seconds": 15, "min_level": 1, "any_language": True},
                    ],
                    "max_wait_seconds": 40,
                    "overflow_queue": "qa",
                },
            },
            "scoring": {"skill_weights": {"a": 2, "b": 1.5}},
            "priority_aging": {"seconds_per_level": aging},
            "reservation": {"timeout_seconds": 8},
            "wrap_up_seconds": 3,
        }
    )


POLICIES = [make_policy(None), make_policy(30.0)]

agent_st = st.builds(
    lambda skills, langs, cap, wrap: (skills, langs, cap, wrap),
    st.dictionaries(st.sampled_from(SKILLS), st.sampled_from([1, 3, 3, 4, 5]), min_size=1),
    st.sets(st.sampled_from(["en", "es"]), min_size=1),
    st.integers(1, 2),
    st.sampled_from([0.0, None]),
)

KINDS = (
    ["enqueue"] * 5
    + ["accept"] * 4
    + ["complete"] * 3
    + ["advance"] * 2
    + ["reject", "timeout", "abandon", "available", "break", "offline", "shift", "rebalance"]
    + ["update"]
)
# every op draws all arguments; each kind uses the ones it needs
op_st = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(["qa", "qab", "qc"]),
    st.sampled_from([None, "en", "es"]),
    st.integers(0, 2),
    st.one_of(st.just({}), st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), min_size=1)),
    st.integers(0, 50),
    st.floats(0, 12),
    st.lists(st.integers(0, 50), min_size=1, max_size=4),
)


# --------------------------------------------------------------------- oracles
def oracle_agent(r: Router, req: Requirement, excluded: set[str]) -> str | None:
    """Linear scan: best (score, longest idle, id) among free eligible agents."""
    best = None
    for a in r.agents.values():
        if a.routable and a.id not in excluded and is_eligible(a.skills, a.languages, req):
            key = (-fit_score(a.skills, req, r.policy.scoring.weight), a.idle_since, a.id)
            best = min(best, (key, a.id)) if best else (key, a.id)
    return best[1] if best else None


def refused(r: Router, call_id: str) -> set[str]:
    """Agents that rejected the call or let its offer time out, from the decision log."""
    return {
        d.agent_id
        for d in r.explain(call_id)
        if d.kind in (DecisionKind.REJECTED, DecisionKind.TIMED_OUT) and d.agent_id
    }


def oracle_call(r: Router, agent: Agent) -> str | None:
    """Linear scan: the waiting call with the smallest (priority/aging, wait) key."""
    aging = r.policy.priority_aging.seconds_per_level
    best = None
    for c in r.calls.values():
        if c.state is not CallState.WAITING or agent.id in refused(r, c.id):
            continue
        if not is_eligible(agent.skills, agent.languages, r.requirement(c.id)):
            continue
        key = call_order_key(
            r.policy.queues[c.queue].priority + c.priority, c.enqueued_at, c.seq, aging
        )
        best = min(best, (key, c.id)) if best else (key, c.id)
    return best[1] if best else None


def check_state(r: Router, enqueued: set[str], finished: set[str]) -> None:
    r.check_invariants()
    for a in r.agents.values():
        assert a.load <= a.capacity
    active = set(r.calls)
    assert not active & finished and active | finished == enqueued, "a call was lost"
    for c in r.calls.values():  # work-conserving: nobody waits while someone free could take it
        if c.state is CallState.WAITING:
            assert oracle_agent(r, r.requirement(c.id), refused(r, c.id)) is None, c.id
        if c.state is CallState.RESERVED:
            a = r.agents[c.agent_id]  # type: ignore[index]
            assert is_eligible(a.skills, a.languages, r.requirement(c.id)) and a.id not in refused(
                r, c.id
            )
    for cid in enqueued:  # an agent who refused a call is never offered it again
        seen: set[str] = set()
        for d in r.explain(cid):
            if d.kind is DecisionKind.OFFERED:
                assert d.agent_id not in seen, f"{cid} offered again to {d.agent_id}"
            elif d.kind in (DecisionKind.REJECTED, DecisionKind.TIMED_OUT):
                seen.add(d.agent_id)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=st.sampled_from(POLICIES),
    agents=st.lists(agent_st, min_size=1, max_size=6),
    ops=st.lists(op_st, min_size=20, max_size=80),
)
def test_router_agrees_with_brute_force_through_any_history(
    policy: RoutingPolicy, agents: list[Any], ops: list[tuple[Any, ...]]
) -> None:
    r = Router(policy)
    now = 0.0
    for i, (skills, langs, cap, wrap) in enumerate(agents):
        presence = AgentState.OFFLINE if i % 3 == 2 else AgentState.AVAILABLE
        r.add_agent(
            Agent(
                f"a{i}",
                skills,
                frozenset(langs),
                capacity=cap,
                wrap_up_seconds=wrap,
                presence=presence,
            ),
            now,
        )
        now += 1.0  # different idle times, so ties on score are broken by idle time
    ids = sorted(r.agents)
    enqueued: set[str] = set()
    finished: set[str] = set()
    n = 0
    for kind, queue, lang, prio, skills, idx, dt, many in ops:
        in_state = {s: sorted(c.id for c in r.calls.values() if c.state is s) for s in CallState}
        if kind == "enqueue":
            n += 1
            call = Call(f"c{n}", queue, skills=dict(skills), language=lang, priority=prio)
            spec = policy.queues[queue]
            req = Requirement.of(skills or spec.skills, lang if lang is not None else spec.language)
            want = oracle_agent(r, req, set())
            d = r.enqueue(call, now)
            enqueued.add(call.id)
            if d.runner_up_score is not None and d.runner_up_score == d.score:
                event("enqueue: tie on score")
            assert d.agent_id == want
            assert d.kind is (DecisionKind.OFFERED if want else DecisionKind.QUEUED)
        elif kind in ("accept", "reject", "timeout"):
            calls = in_state[CallState.RESERVED]
            if calls:
                c = r.calls[calls[idx % len(calls)]]
                getattr(r, kind)(c.id, c.agent_id, now)
        elif kind == "complete":
            calls = in_state[CallState.CONNECTED]
            if calls:
                c = r.calls[calls[idx % len(calls)]]
                agent = r.agents[c.agent_id]  # type: ignore[index]
                instant = agent.wrap_up_seconds == 0 and agent.presence is AgentState.AVAILABLE
                # the agent frees up at once: the oracle picks its next call (connected calls never wait)
                want_call = oracle_call(r, agent) if instant else None
                out = r.complete(c.id, now)
                finished.add(c.id)
                event(f"complete: oracle call {'set' if want_call else 'none'}")
                assert (out[0].call_id if out else None) == want_call
                assert all(d.agent_id == agent.id for d in out)
        elif kind == "abandon":
            calls = in_state[CallState.WAITING] + in_state[CallState.RESERVED]
            if calls:
                cid = calls[idx % len(calls)]
                r.abandon(cid, now)
                finished.add(cid)
        elif kind in ("available", "break", "offline"):
            agent = r.agents[ids[idx % len(ids)]]
            fresh = kind == "available" and not agent.routable and not agent.slots
            want_call = oracle_call(r, agent) if fresh else None
            out = r.set_agent_state(agent.id, kind, now)
            if fresh:
                assert (out[0].call_id if out else None) == want_call
                assert all(d.agent_id == agent.id for d in out)
        elif kind == "update":  # new skills take effect at once
            if skills:
                r.update_agent(ids[idx % len(ids)], now, skills=skills)
        elif kind == "advance":
            now += dt
            r.tick(now)
        elif kind == "shift":
            r.agents_available([ids[i % len(ids)] for i in many], now)
        else:
            r.rebalance(now)
        check_state(r, enqueued, finished)
    # and a restored copy is the same router
    copy = Router.from_dict(r.to_dict())
    copy.check_invariants()
    assert copy.to_dict() == r.to_dict()


# ------------------------------------------------------------------ batches
batch_st = st.integers(1, 4).flatmap(
    lambda nc: st.integers(1, 4).flatmap(
        lambda na: st.tuples(
            st.just(nc),
            st.dictionaries(st.integers(0, na - 1), st.integers(1, 2), min_size=na, max_size=na),
            st.lists(
                st.dictionaries(st.integers(0, na - 1), st.integers(1, 9)), min_size=nc, max_size=nc
            ),
            st.permutations(list(range(na))),
        )
    )
)


def unpack(
    inst: Any,
) -> tuple[list[str], dict[str, int], dict[str, dict[str, float]], dict[str, int]]:
    nc, slots, rows, idle = inst
    calls = [f"c{i}" for i in range(nc)]
    agents = {f"a{j}": k for j, k in slots.items()}
    edges = {calls[i]: {f"a{j}": s / 2 for j, s in row.items()} for i, row in enumerate(rows)}
    return calls, agents, edges, {f"a{j}": rank for j, rank in enumerate(idle)}


def brute_force(
    calls: list[str], agents: dict[str, int], edges: dict[str, dict[str, float]]
) -> tuple[Any, float]:
    """Best (served ranks, total fit) over every feasible assignment."""
    best: Any = None
    for choice in itertools.product(*[[None, *edges[c]] for c in calls]):
        used: dict[str, int] = {}
        for a in choice:
            if a is not None:
                used[a] = used.get(a, 0) + 1
        if any(used[a] > agents[a] for a in used):
            continue
        ranks = tuple(i for i, a in enumerate(choice) if a is not None)
        fit = sum(edges[c][a] for c, a in zip(calls, choice, strict=True) if a is not None)
        key = (len(ranks), tuple(-x for x in ranks), round(fit, 9))
        best = max(best, key) if best else key
    return best


def served_key(calls: list[str], res: Any, edges: dict[str, dict[str, float]]) -> Any:
    ranks = tuple(sorted(calls.index(c) for c in res.pairs))
    return (len(ranks), tuple(-x for x in ranks), round(res.total_fit(edges), 9))


@settings(max_examples=300, deadline=None)
@given(inst=batch_st)
def test_batch_is_the_exhaustive_optimum_and_never_worse_than_greedy(inst: Any) -> None:
    calls, agents, edges, idle = unpack(inst)
    res = solve_batch(calls, agents, edges, idle)
    # feasible: eligible pairs, capacity respected
    assert all(a in edges[c] for c, a in res.pairs.items())
    for a, k in agents.items():
        assert sum(1 for x in res.pairs.values() if x == a) <= k
    best = brute_force(calls, agents, edges)
    got = served_key(calls, res, edges)
    assert got == best
    greedy = served_key(calls, solve_greedy(calls, agents, edges, idle), edges)
    assert got >= greedy
    assert got[0] >= greedy[0]  # serves at least as many calls


@settings(max_examples=60, deadline=None)
@given(inst=batch_st)
def test_scipy_and_networkx_solvers_find_the_same_optimum(inst: Any) -> None:
    calls, agents, edges, idle = unpack(inst)
    a = solve_batch(calls, agents, edges, idle)
    old = batch_mod._SCIPY_ABOVE
    batch_mod._SCIPY_ABOVE = 0
    try:
        b = solve_batch(calls, agents, edges, idle)
    finally:
        batch_mod._SCIPY_ABOVE = old
    assert served_key(calls, a, edges) == served_key(calls, b, edges)


def test_greedy_is_strictly_worse_on_the_classic_case() -> None:
    calls = ["urgent", "other"]
    agents = {"wide": 1, "narrow": 1}
    edges = {"urgent": {"wide": 5.0, "narrow": 1.0}, "other": {"wide": 1.0}}
    assert solve_greedy(calls, agents, edges).pairs == {"urgent": "wide"}
    assert solve_batch(calls, agents, edges).pairs == {"urgent": "narrow", "other": "wide"}
    # same calls served, better fit
    edges2 = {"urgent": {"x": 5.0, "y": 4.0}, "other": {"x": 5.0, "y": 1.0}}
    g = solve_greedy(calls, {"x": 1, "y": 1}, edges2)
    b = solve_batch(calls, {"x": 1, "y": 1}, edges2)
    assert (g.total_fit(edges2), b.total_fit(edges2)) == (6.0, 9.0)
