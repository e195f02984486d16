"""The estimated wait is honest: simulate a queue through the router and compare.

A small discrete-event loop (no SimPy: just a heap of events) drives the real
router with Poisson arrivals and known handle-time distributions; every queued
call's estimate, taken when it is queued, is compared with the wait it then had.
"""

from __future__ import annotations

import heapq
import math
import random
import statistics

import pytest

from routing import Agent, AgentState, Call, DecisionKind, Router
from routing.policy import parse_policy


def simulate(
    handle: str, n_calls: int, agents: int, load: float, seed: int
) -> tuple[list[float], list[float]]:
    """Return (estimates, actual waits) of the calls that had to queue."""
    rng = random.Random(seed)
    aht = 120.0
    policy = parse_policy(
        {
            "queues": {"general": {"skills": {"general": 1}, "handle_seconds": aht}},
            "wrap_up_seconds": 0,
        }
    )
    r = Router(policy)
    for i in range(agents):
        r.add_agent(Agent(f"a{i}", {"general": 1 + i % 5}, presence=AgentState.AVAILABLE), 0.0)

    def handle_time() -> float:
        if handle == "exponential":
            return rng.expovariate(1 / aht)
        sigma = 0.8  # lognormal with the same mean, CV ~ 0.9
        return rng.lognormvariate(math.log(aht) - sigma**2 / 2, sigma)

    events: list[tuple[float, int, str, str]] = []
    seq = 0
    t = 0.0
    for n in range(n_calls):
        t += rng.expovariate(load * agents / aht)
        events.append((t, seq := seq + 1, "arrive", f"c{n}"))
    heapq.heapify(events)
    enqueued_at: dict[str, float] = {}
    estimate: dict[str, float] = {}
    waits: dict[str, float] = {}

    def connect(decisions: list, now: float) -> None:
        nonlocal seq
        for d in decisions:
            if d.kind is DecisionKind.OFFERED:
                r.accept(d.call_id, d.agent_id, now)
                waits[d.call_id] = now - enqueued_at[d.call_id]
                heapq.heappush(events, (now + handle_time(), seq := seq + 1, "end", d.call_id))

    while events:
        now, _, kind, cid = heapq.heappop(events)
        if kind == "arrive":
            enqueued_at[cid] = now
            d = r.enqueue(Call(cid, "general"), now)
            if d.kind is DecisionKind.QUEUED:
                est = r.estimated_wait(now, call_id=cid)
                assert est is not None
                estimate[cid] = est
            connect([d], now)
        else:
            connect(r.complete(cid, now), now)
    queued = [c for c in estimate if c in waits]
    assert len(queued) == len(estimate)  # no call lost
    return [estimate[c] for c in queued], [waits[c] for c in queued]


@pytest.mark.parametrize("handle, tolerance", [("exponential", 0.10), ("lognormal", 0.12)])
def test_estimated_wait_matches_what_then_happened(handle: str, tolerance: float) -> None:
    est, actual = simulate(handle, n_calls=6000, agents=8, load=0.9, seed=11)
    assert len(est) > 1000  # enough calls waited for the comparison to mean something
    mean_est, mean_act = statistics.fmean(est), statistics.fmean(actual)
    # unbiased on average ...
    assert abs(mean_est - mean_act) <= tolerance * mean_act, (mean_est, mean_act)
    # ... and informative call by call: much better than quoting everyone the mean
    mae = statistics.fmean(abs(e - a) for e, a in zip(est, actual, strict=True))
    mae_flat = statistics.fmean(abs(mean_act - a) for a in actual)
    assert mae < 0.6 * mae_flat, (mae, mae_flat)
    assert statistics.correlation(est, actual) > 0.8


def test_no_staffed_agent_means_no_estimate_and_a_free_agent_means_zero() -> None:
    r = Router()
    assert r.estimated_wait(0.0, queue="general") is None
    r.add_agent(Agent("a", {"general": 2}, presence=AgentState.AVAILABLE), 0.0)
    assert r.estimated_wait(0.0, queue="general") == 0.0
    r.enqueue(Call("c1", "general"), 1.0)
    r.accept("c1", "a", 1.0)
    # one busy agent, nobody ahead: one handle time (the policy's prior, 300 s)
    assert r.estimated_wait(2.0, queue="general") == pytest.approx(300.0)
    r.enqueue(Call("c2", "general"), 2.0)
    assert r.estimated_wait(2.0, queue="general") == pytest.approx(600.0)
    assert r.estimated_wait(2.0, call_id="c2") == pytest.approx(300.0)
