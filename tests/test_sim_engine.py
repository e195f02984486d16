"""The event loop over the production router: invariants, reproducibility, features."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulation.engine import simulate_plan
from simulation.live_router import LiveRouter
from simulation.roster import build_roster
from simulation.runner import run_scenario, simulate_replication
from simulation.scenario import Scenario, parse_scenario
from simulation.traffic import draw_plan


def small(**over) -> Scenario:
    data = {
        "arrivals": {"rate_per_hour": 120},
        "duration_hours": 2,
        "handle_time": {"distribution": "exponential", "mean_seconds": 180},
        "patience": {"distribution": "exponential", "mean_seconds": 120},
        "agents": [{"count": 6}],
        "replications": 4,
        "seed": 3,
    }
    data.update(over)
    return parse_scenario(data)


def check_invariants(sc: Scenario, index: int = 0) -> None:
    rep = simulate_replication(sc, index)
    c, s = rep.calls, rep.agents
    answered = ~np.isnan(c.answered_at)
    abandoned = ~np.isnan(c.abandoned_at)
    queued = ~c.contained
    # every queued call ends answered or abandoned, never both; contained calls never queue
    assert np.array_equal(answered | abandoned, queued)
    assert not (answered & abandoned).any()
    assert np.isnan(c.queued_at[c.contained]).all()
    # time runs forward
    assert (c.queued_at[queued] >= c.arrival[queued]).all()
    assert (c.answered_at[answered] >= c.queued_at[answered] - 1e-9).all()
    assert (c.abandoned_at[abandoned] > c.queued_at[abandoned]).all()
    # only a caller who waited can hang up; an unanswered caller at once waited
    assert c.waited[abandoned].all()
    assert c.waited[answered & (c.answered_at > c.queued_at + 1e-9)].all()
    # callbacks keep their place and never abandon
    assert not (c.callback & abandoned).any()
    # transfers only for misrecognised intents, at most one each
    assert set(np.unique(c.transferred)) <= {0, 1}
    # an agent holds one call at a time, and only while logged in
    o = np.lexsort((s.busy_start, s.busy_agent))
    a, b0, b1 = s.busy_agent[o], s.busy_start[o], s.busy_end[o]
    same = a[1:] == a[:-1]
    assert not (same & (b0[1:] < b1[:-1] - 1e-9)).any()
    assert (b1 >= b0).all()
    for k in np.unique(a):
        mine = s.login_agent == k
        spans = list(zip(s.login_start[mine], s.login_end[mine], strict=True))
        for x0, x1 in zip(b0[a == k], b1[a == k], strict=True):
            assert any(l0 - 1e-9 <= x0 and x1 <= l1 + 1e-9 for l0, l1 in spans)
    # handled time covers every busy span
    assert math.isclose(
        float(c.handled_seconds.sum()), float((b1 - b0).sum()), rel_tol=1e-9, abs_tol=1e-6
    )


distribution = st.sampled_from(
    [
        {"distribution": "exponential", "mean_seconds": 150},
        {"distribution": "lognormal", "mean_seconds": 200, "cv": 1.2},
        {"distribution": "gamma", "mean_seconds": 120, "cv": 0.5},
        {"distribution": "deterministic", "mean_seconds": 90},
        {"distribution": "empirical", "values_seconds": [30, 60, 400]},
    ]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(10, 400),
    handle=distribution,
    patience=st.one_of(st.none(), distribution),
    agents=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.sets(st.sampled_from(["a", "b", "c"]), min_size=1),
            st.floats(0, 1.5),
            st.floats(0.5, 3.0),
        ),
        min_size=1,
        max_size=3,
    ),
    contain=st.floats(0, 0.5),
    accuracy=st.floats(0.5, 1.0),
    wrap=st.sampled_from([0.0, 20.0]),
    callbacks=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_invariants_hold_for_any_scenario(
    rate, handle, patience, agents, contain, accuracy, wrap, callbacks, seed
):
    groups = [
        {"count": n, "skills": sorted(sk), "shift": {"start_hour": s0, "end_hour": s0 + dur}}
        for n, sk, s0, dur in agents
    ]
    groups.append({"count": 1, "skills": ["a", "b", "c"]})  # someone can always serve
    data = {
        "arrivals": {"rates_per_hour": [rate, rate * 2, rate / 2, rate], "interval_minutes": 30},
        "duration_hours": 2,
        "handle_time": handle,
        "agents": groups,
        "intents": [
            {
                "name": "a",
                "share": 2,
                "containment": contain,
                "recognition_accuracy": accuracy,
                "ivr_seconds": 30,
            },
            {"name": "b", "share": 1, "recognition_accuracy": accuracy},
            {"name": "c", "share": 1, "skills": ["a", "c"]},
        ],
        "wrap_up_seconds": wrap,
        "replications": 2,
        "seed": seed,
    }
    if patience is not None:
        data["patience"] = patience
    if callbacks:
        data["callbacks"] = {"offer_after_seconds": 45, "accept_share": 0.5}
    check_invariants(parse_scenario(data))


def test_same_seed_same_numbers_whatever_the_workers() -> None:
    sc = small()
    a = run_scenario(sc, workers=1)
    b = run_scenario(sc, workers=2)
    assert a.summary == b.summary
    assert a.intervals == b.intervals
    c = run_scenario(sc.model_copy(update={"seed": 4}), workers=1)
    assert c.summary["offered"] != a.summary["offered"]


def test_the_lean_router_decides_exactly_as_the_production_router(tmp_path: Path) -> None:
    """The simulator's fast path (``record_decisions=False, auto_accept=True``) against the
    live defaults (decisions recorded, every offer accepted by the adapter): the same agent
    for every call at the same times, on a multi-skill day with relaxation, overflow,
    priorities, misroutes and transfers, per-group wrap-up, shifts, callbacks and hang-ups."""
    policy = tmp_path / "routing.yaml"
    policy.write_text(
        """
version: 1
queues:
  billing: {skills: {billing: 4}, relax: [{after_seconds: 30, min_level: 1}]}
  tech: {skills: {tech: 3}, priority: 1}
  sales: {skills: {sales: 1}, max_wait_seconds: 60, overflow_queue: billing}
wrap_up_seconds: 10
""",
        encoding="utf-8",
    )
    sc = parse_scenario(
        {
            "arrivals": {"rate_per_hour": 300},
            "duration_hours": 2,
            "handle_time": {"distribution": "exponential", "mean_seconds": 150},
            "patience": {"distribution": "exponential", "mean_seconds": 200},
            "intents": [
                {"name": "billing", "share": 2},
                {"name": "tech", "priority": 1},
                {"name": "sales", "recognition_accuracy": 0.8},
            ],
            "agents": [
                {"count": 5, "skills": {"billing": 5}},
                {"count": 4, "skills": {"billing": 2, "tech": 4}, "wrap_up_seconds": 25},
                {"count": 3, "skills": {"sales": 3, "billing": 1}, "wrap_up_seconds": 0},
                {"counts_per_interval": [2, 0, 3, 1], "skills": {"tech": 3, "sales": 2}},
                {
                    "count": 2,
                    "skills": {"billing": 3},
                    "shift": {"start_hour": 0.5, "end_hour": 1.5},
                },
            ],
            "callbacks": {"offer_after_seconds": 90, "accept_share": 0.3},
            "routing_policy": str(policy),
            "replications": 2,
            "seed": 5,
        }
    )
    roster = build_roster(sc)
    out = []
    for explain in (False, True):
        plan = draw_plan(sc, np.random.default_rng(9))
        calls, spans, _ = simulate_plan(
            sc, plan, roster, LiveRouter(sc, plan, roster, explain=explain)
        )
        out.append((calls, spans))
    (c0, s0), (c1, s1) = out
    for name in (
        "answered_at",
        "abandoned_at",
        "waited",
        "handled_seconds",
        "transferred",
        "callback",
    ):
        assert np.array_equal(getattr(c0, name), getattr(c1, name), equal_nan=True), name
    for name in (
        "busy_agent",
        "busy_start",
        "busy_end",
        "login_agent",
        "login_start",
        "login_end",
    ):
        assert np.array_equal(getattr(s0, name), getattr(s1, name)), name
    answered = ~np.isnan(c0.answered_at)
    assert answered.sum() > 300 and (~np.isnan(c0.abandoned_at)).sum() > 5
    assert (c0.transferred > 0).any() and c0.callback.any()
    assert len(set(s0.login_agent.tolist())) == len(roster) and len(s0.login_agent) > len(roster)


def test_cross_training_helps_and_waits_fall() -> None:
    def run(skills_per_agent: int) -> float:
        types = ["a", "b", "c"]
        groups = [
            {
                "count": 6,
                "skills": {types[(k + j) % 3]: 5 if j == 0 else 3 for j in range(skills_per_agent)},
            }
            for k in range(3)
        ]
        sc = parse_scenario(
            {
                "arrivals": {"rate_per_hour": 3 * 0.9 * 6 * 20},
                "duration_hours": 4,
                "warmup_minutes": 30,
                "handle_time": {"distribution": "exponential", "mean_seconds": 180},
                "patience": {"distribution": "exponential", "mean_seconds": 180},
                "intents": [{"name": t} for t in types],
                "agents": groups,
                "replications": 4,
                "seed": 2,
            }
        )
        return run_scenario(sc, workers=1).summary["service_level"]["mean"]

    one, two, three = run(1), run(2), run(3)
    assert one < two <= three + 0.02
    assert three - two < two - one  # most of the gain comes from a second skill


def test_containment_transfers_and_ivr_time() -> None:
    sc = small(
        arrivals={"rate_per_hour": 600},
        intents=[
            {"name": "default", "containment": 0.3, "ivr_seconds": 45, "recognition_accuracy": 0.8},
            {"name": "other", "skills": ["default"], "share": 1},
        ],
        agents=[{"count": 40}],
        patience=None,
    )
    res = run_scenario(sc, workers=1)
    contained = res.summary["containment"]["mean"]
    assert 0.1 < contained < 0.2  # 30% of half the callers
    assert (
        0.05 < res.summary["transfer_rate"]["mean"] < 0.15
    )  # 20% of the first intent's queued callers
    rep = simulate_replication(sc, 0)
    first = rep.calls.intent == 0
    q = ~rep.calls.contained & first
    assert np.allclose(rep.calls.queued_at[q] - rep.calls.arrival[q], 45.0)


def test_wrap_up_counts_in_aht_and_occupancy() -> None:
    sc = small(
        wrap_up_seconds=60,
        patience=None,
        agents=[{"count": 30}],
        handle_time={"distribution": "deterministic", "mean_seconds": 120},
    )
    s = run_scenario(sc, workers=1).summary
    assert s["aht_seconds"]["mean"] == pytest.approx(180.0)
    # occupancy = offered load / agents = 120 calls/h * 180 s / 3600 / 30
    assert s["occupancy"]["mean"] == pytest.approx(0.2, abs=0.02)


def test_shifts_and_per_interval_staffing() -> None:
    sc = small(
        agents=[
            {"count": 4, "shift": {"start_hour": 0, "end_hour": 1}},
            {"counts_per_interval": [2, 2, 0, 3], "shift": {"start_hour": 0}},
        ],
        patience=None,
    )
    res = run_scenario(sc, workers=1)
    agents = [row["agents"]["mean"] for row in res.intervals]
    assert agents[0] == pytest.approx(6) and agents[1] == pytest.approx(6)
    assert 0 < agents[2] < 1  # nobody rostered: only agents finishing their last call
    assert agents[3] == pytest.approx(3)


def test_proficiency_changes_handle_time() -> None:
    def aht(level: int) -> float:
        sc = small(
            agents=[{"count": 20, "skills": {"default": level}}],
            proficiency_speed={1: 1.5, 5: 0.5},
            handle_time={"distribution": "deterministic", "mean_seconds": 100},
        )
        return run_scenario(sc, workers=1).summary["aht_seconds"]["mean"]

    assert (
        aht(1) == pytest.approx(150)
        and aht(5) == pytest.approx(50)
        and aht(3) == pytest.approx(100)
    )


def test_callbacks_remove_abandonment() -> None:
    base = small(arrivals={"rate_per_hour": 200})
    cb = base.model_copy(
        update={
            "callbacks": parse_scenario(
                {
                    **base.model_dump(exclude={"base_dir", "source"}),
                    "callbacks": {"offer_after_seconds": 1, "accept_share": 1.0},
                }
            ).callbacks
        }
    )
    assert run_scenario(base, workers=1).summary["abandon_rate"]["mean"] > 0.05
    s = run_scenario(cb, workers=1).summary
    assert s["abandon_rate"]["mean"] < 0.01 and s["callback_rate"]["mean"] > 0.3


def test_a_queue_no_group_can_serve_is_a_scenario_error(tmp_path: Path) -> None:
    from simulation.errors import ScenarioError

    (tmp_path / "p.yaml").write_text(
        "version: 1\nqueues:\n  default: {skills: {default: 5}}\n", encoding="utf-8"
    )
    sc = small(routing_policy=str(tmp_path / "p.yaml"))  # agents have level 3
    with pytest.raises(ScenarioError) as err:
        run_scenario(sc, workers=2)
    assert err.value.field == "intents.0" and "default>=5" in str(err.value)


FLOW = """\
id: sim_test
name: Simulator test line
start: greet
nodes:
  greet:
    type: say
    text: Thanks for calling the simulator test line.
    next: menu
  menu:
    type: ask
    prompt: Say sales, support or balance, or press 1, 2 or 3.
    intents:
      sales:
        keys: ["1"]
        examples: [sales, buy something, pricing, upgrade my plan]
        next: to_sales
      support:
        keys: ["2"]
        examples: [support, it is broken, technical problem, not working]
        next: to_support
      balance:
        keys: ["3"]
        examples: [balance, how much do I owe, my balance]
        next: self_service
    no_match: to_support
  self_service:
    type: hangup
    text: Your balance is forty two dollars. Goodbye.
  to_sales:
    type: route
    queue: sales
    skills: {sales: 1}
  to_support:
    type: route
    queue: support
    skills: {support: 1}
"""


def test_callers_walk_the_real_ivr_flow(tmp_path: Path) -> None:
    pytest.importorskip("ivr.engine")
    (tmp_path / "flow.yaml").write_text(FLOW, encoding="utf-8")
    data = {
        "arrivals": {"rate_per_hour": 400},
        "duration_hours": 2,
        "handle_time": {"distribution": "exponential", "mean_seconds": 200},
        "patience": {"distribution": "exponential", "mean_seconds": 120},
        "intents": [{"name": "sales"}, {"name": "support", "share": 2}, {"name": "balance"}],
        "agents": [
            {"count": 10, "skills": ["sales"]},
            {"count": 16, "skills": ["support"]},
            {"count": 1, "skills": ["balance"]},
        ],
        "flow": {
            "path": str(tmp_path / "flow.yaml"),
            "garble_share": 0.5,
            "samples_per_interval": 30,
        },
        "replications": 3,
        "seed": 8,
    }
    sc = parse_scenario(data, base_dir=str(tmp_path))
    check_invariants(sc)
    rep = simulate_replication(sc, 0)
    c = rep.calls
    balance = c.intent == 2
    # self-service ends in the IVR, unless garbled speech sent the caller elsewhere
    assert c.contained[balance].mean() > 0.6 and c.contained[~balance].mean() < 0.2
    ivr = (c.queued_at - c.arrival)[~c.contained]
    assert (ivr > 5).all() and (ivr < 120).all()  # prompts and answers take time
    s = run_scenario(sc, workers=1).summary
    assert 0.15 < s["containment"]["mean"] < 0.3
    assert s["transfer_rate"]["mean"] > 0  # garbled speech misrecognised by the flow's recognizer
    assert run_scenario(sc, workers=2).summary == s  # journeys are seeded too
