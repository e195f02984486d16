"""What replaying a real contact center's logs needs: schedules, overtime, censored and
non-exponential patience, priorities, per-call IVR time, and no call left unaccounted."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.distributions import sample, sample_above
from simulation.errors import ScenarioError
from simulation.roster import build_roster
from simulation.runner import run_scenario, simulate_replication
from simulation.scenario import Distribution, load_scenario, parse_scenario
from simulation.traffic import draw_plan

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def base(**over):  # type: ignore[no-untyped-def]
    data = {
        "arrivals": {"rate_per_hour": 100},
        "duration_hours": 2,
        "handle_time": {"distribution": "exponential", "mean_seconds": 120},
        "agents": [{"count": 3}],
        "replications": 2,
    }
    data.update(over)
    return data


# -- staffing from a schedule ---------------------------------------------------------


def test_fractional_staffing_table_keeps_agent_hours_exactly(tmp_path: Path) -> None:
    write(
        tmp_path,
        "staff.csv",
        "group,interval_start,agents\nday,00:00,2.5\nday,00:30,4\nother,00:00,9\nday,01:00,0.25\n",
    )
    sc = parse_scenario(
        base(agents=[{"name": "day", "staffing_table": "staff.csv"}], duration_hours=1.5),
        base_dir=str(tmp_path),
    )
    roster = build_roster(sc)
    assert len(roster) == 4
    hours = sum(min(b, 5400) - a for r in roster for a, b in r.spans) / 3600.0
    assert hours == pytest.approx(0.5 * 2.5 + 0.5 * 4 + 0.5 * 0.25)
    # the fractional agent is logged in for the first half of the first half hour
    assert roster[2].spans[0] == (0.0, 900.0)


def test_counts_per_interval_may_be_fractional() -> None:
    sc = parse_scenario(
        base(agents=[{"counts_per_interval": [1.5, 1, 0, 2, 2, 2]}], duration_hours=3)
    )
    spans = {r.index: r.spans for r in build_roster(sc)}
    assert spans[0] == ((0.0, 3600.0), (5400.0, math.inf))
    assert spans[1] == ((0.0, 900.0), (5400.0, math.inf))


def test_roster_with_login_and_logout_times(tmp_path: Path) -> None:
    write(
        tmp_path,
        "roster.csv",
        "agent_id,login,logout\nann,2026-03-02T08:00:00,2026-03-02T12:00:00\n"
        "ann,2026-03-02T13:00:00,2026-03-02T17:00:00\nbob,09:30,18:00\n",
    )
    write(tmp_path, "log.csv", "arrival_time,intent,handle_seconds\n2026-03-02T09:00:00,a,60\n")
    text = """
arrivals: {replay: log.csv}
duration_hours: 24
agents:
  - {name: team, roster: roster.csv, skills: [a]}
  - name: inline
    skills: [a]
    roster: [{agent: cat, login: 3600, logout: "02:00"}]
"""
    sc = load_scenario(write(tmp_path, "s.yaml", text))
    rep = simulate_replication(sc, 0)
    assert rep.calls.answered_at[0] == 9 * 3600  # ann is logged in at 09:00
    spans = {r.name: r.spans for r in build_roster(sc)}
    assert spans["ann"] == ((8 * 3600.0, 12 * 3600.0), (13 * 3600.0, 17 * 3600.0))
    assert spans["bob"] == ((9.5 * 3600.0, 18 * 3600.0),)
    assert spans["cat"] == ((3600.0, 7200.0),)


@pytest.mark.parametrize(
    "agents,match",
    [
        ([{"counts_per_interval": [1, 1, 1]}], "3 entries"),
        ([{"staffing_table": "a.csv", "roster": "b.csv"}], "at most one"),
        ([{"roster": [{"agent": "x", "login": "09:00", "logout": "08:00"}]}], "after login"),
        (
            [{"roster": [{"agent": "x", "login": "09:00", "logout": "12:00", "breaks": "11:30"}]}],
            "breaks.*HH:MM-HH:MM",
        ),
        (
            [{"roster": [{"agent": "x", "login": "09:00", "logout": "12:00", "breaks": "12:30-13:00"}]}],
            "breaks.*not inside the shift",
        ),
    ],
)
def test_staffing_errors_name_the_field(agents, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ScenarioError, match=match) as err:
        build_roster(parse_scenario(base(agents=agents)))
    assert "agents.0" in str(err.value) or "roster" in str(err.value)


def test_roster_breaks_cut_the_span_and_shrinkage_leaves_out_its_share(
    tmp_path: Path,
) -> None:
    write(
        tmp_path,
        "roster.csv",
        "agent_id,login,logout,breaks\n"
        "ann,2026-03-02T22:00,2026-03-03T06:30,00:30-01:00 03:00-03:15\n"
        "bob,08:00,16:00,11:30-12:00\n",
    )
    sc = parse_scenario(
        base(
            duration_hours=48,
            start_at="2026-03-02T00:00",
            agents=[
                {"name": "t", "roster": "roster.csv"},
                {"name": "n", "count": 8, "shrinkage": 0.25},
                {  # 40 identical shifts, and 400 shifts each of its own
                    "name": "r",
                    "shrinkage": 0.25,
                    "roster": [{"agent": f"s{k}", "login": 60, "logout": 120} for k in range(40)]
                    + [{"agent": f"a{k}", "login": 60 * k, "logout": 60 * k + 30} for k in range(400)],
                },
            ],
        ),
        base_dir=str(tmp_path),
    )
    spans = {r.name: r.spans for r in build_roster(sc) if r.group == 0}
    h = 3600.0
    assert spans["ann"] == ((22 * h, 24.5 * h), (25 * h, 27 * h), (27.25 * h, 30.5 * h))
    assert spans["bob"] == ((8 * h, 11.5 * h), (12 * h, 16 * h))
    counted = [r for r in build_roster(sc) if r.group == 1]
    assert sum(min(b, 48 * h) - a for r in counted for a, b in r.spans) == 6 * 48 * h
    kept = [r.name for r in build_roster(sc) if r.group == 2]
    assert sum(k.startswith("s") for k in kept) == 30  # a quarter of identical shifts, exactly
    lone = sum(k.startswith("a") for k in kept)
    assert abs(lone - 300) <= 3 * (400 * 0.25 * 0.75) ** 0.5  # each with probability 0.25
    assert kept == [r.name for r in build_roster(sc) if r.group == 2]  # the same every time


def _overtime_scenario(tmp_path: Path, early: float) -> dict:
    write(tmp_path, "log.csv", "arrival_time,intent,handle_seconds\n50,a,100\n90,a,100\n")
    return {
        "arrivals": {"replay": "log.csv"},
        "duration_hours": 1,
        "agents": [
            {"name": "short", "skills": [a], "roster": [{"agent": "s", "login": 0, "logout": 120}]}
            for a in ["a"]
        ]
        + [
            {
                "name": "late",
                "skills": ["a"],
                "roster": [{"agent": "l", "login": 600, "logout": 3600}],
            }
        ],
        "end_of_shift": {"no_new_calls_seconds": early},
        "replications": 2,
    }


def test_the_call_in_hand_at_logout_is_finished_and_counted_as_overtime(tmp_path: Path) -> None:
    sc = parse_scenario(_overtime_scenario(tmp_path, 0), base_dir=str(tmp_path))
    rep = simulate_replication(sc, 0)
    # the short-shift agent takes the call of 00:50 and talks until 150 s: 30 s overtime
    assert rep.calls.answered_at[0] == 50 and rep.calls.answered_at[1] == 600
    assert list(rep.agents.overtime_start) == [120.0] and list(rep.agents.overtime_end) == [150.0]
    res = run_scenario(sc, workers=1)
    assert res.summary["overtime_hours"]["mean"] == pytest.approx(30 / 3600)
    assert res.summary["agent_hours"]["mean"] == pytest.approx((150 + 3000) / 3600)


def test_no_new_calls_before_logout_moves_the_last_call(tmp_path: Path) -> None:
    sc = parse_scenario(_overtime_scenario(tmp_path, 80), base_dir=str(tmp_path))
    rep = simulate_replication(sc, 0)
    # offers stop at 40 s: the 00:50 call waits for the late agent; no overtime
    assert rep.calls.answered_at[0] == 600 and rep.agents.overtime_start.size == 0
    assert rep.agents.login_end[rep.agents.login_agent == 0][0] == 120.0


# -- patience laws --------------------------------------------------------------------

LAWS = [
    Distribution(distribution="exponential", mean_seconds=100),
    Distribution(distribution="lognormal", mean_seconds=100, cv=1.2),
    Distribution(distribution="gamma", mean_seconds=100, cv=0.6),
    Distribution(distribution="weibull", mean_seconds=100, shape=0.6),
    Distribution(distribution="empirical", values_seconds=[5, 50, 200]),
    Distribution(
        distribution="survival",
        times_seconds=[10, 60, 300],
        survival=[0.9, 0.5, 0.2],
        tail_mean_seconds=100,
    ),
]


@pytest.mark.parametrize("law", LAWS, ids=lambda d: d.distribution)
def test_each_law_has_its_stated_mean(law: Distribution) -> None:
    x = sample(law, np.random.default_rng(1), 200_000)
    assert x.mean() == pytest.approx(law.mean, rel=0.03)


def test_a_survival_curve_is_reproduced() -> None:
    law = LAWS[-1]
    x = sample(law, np.random.default_rng(2), 100_000)
    for t, s in zip(law.times_seconds or [], law.survival or [], strict=True):
        assert (x > t).mean() == pytest.approx(s, abs=0.01)


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(LAWS), st.lists(st.floats(0, 2000), min_size=1, max_size=30), st.integers(0, 9)
)
def test_censored_draws_never_fall_below_the_wait(law, bounds, seed) -> None:  # type: ignore[no-untyped-def]
    lo = np.asarray(bounds)
    x = sample_above(law, np.random.default_rng(seed), lo)
    assert (x >= lo).all()


def test_censored_exponential_is_memoryless() -> None:
    law = LAWS[0]
    x = sample_above(law, np.random.default_rng(3), np.full(100_000, 250.0))
    assert (x - 250).mean() == pytest.approx(100, rel=0.03)
    w = sample_above(LAWS[3], np.random.default_rng(3), np.full(100_000, 250.0))
    assert (w - 250).mean() > 150  # a falling hazard: who waited long waits longer


def test_patience_per_intent_and_priority_class() -> None:
    sc = parse_scenario(
        base(
            patience={"distribution": "deterministic", "mean_seconds": 100},
            patience_by_priority={5: {"distribution": "deterministic", "mean_seconds": 500}},
            intents=[
                {"name": "a", "share": 1},
                {"name": "vip", "share": 1, "priority": 5},
                {
                    "name": "b",
                    "share": 1,
                    "patience": {"distribution": "deterministic", "mean_seconds": 7},
                },
            ],
            agents=[{"count": 3, "skills": ["a", "vip", "b"]}],
        )
    )
    plan = draw_plan(sc, np.random.default_rng(0))
    for k, want in enumerate([100, 500, 7]):
        assert set(plan.patience[plan.intent == k]) == {want}


# -- replay columns -------------------------------------------------------------------


def replay(
    tmp_path: Path, rows: str, extra: str = "", agents: str = "[{count: 1, skills: [a, b]}]"
):  # type: ignore[no-untyped-def]
    write(tmp_path, "log.csv", rows)
    return load_scenario(
        write(
            tmp_path,
            "s.yaml",
            f"arrivals: {{replay: log.csv}}\nduration_hours: 1\nagents: {agents}\n"
            f"patience: {{distribution: exponential, mean_seconds: 60}}\nreplications: 3\n{extra}",
        )
    )


def test_censored_patience_column_is_a_lower_bound(tmp_path: Path) -> None:
    rows = "arrival_time,intent,handle_seconds,patience_at_least_seconds\n"
    rows += "".join(f"{k},a,10,{300 + k}\n" for k in range(200))
    sc = replay(tmp_path, rows)
    plan = draw_plan(sc, np.random.default_rng(0))
    assert (plan.patience >= 300 + plan.arrival).all()


def test_a_fully_given_patience_column_warns_that_replications_are_identical(
    tmp_path: Path,
) -> None:
    head = "arrival_time,intent,handle_seconds,patience_seconds\n0,a,100,\n"
    rows = head + "".join(f"{k},a,10,{10 * k}\n" for k in range(1, 20))
    res = run_scenario(replay(tmp_path, rows), workers=1)
    assert any("identical" in w for w in res.warnings)
    assert res.summary["abandon_rate"]["ci_low"] == res.summary["abandon_rate"]["ci_high"]
    rows = head + "".join(f"{k},a,10,\n" for k in range(1, 20))  # drawn: replications differ
    res = run_scenario(replay(tmp_path, rows), workers=1)
    assert not any("identical" in w for w in res.warnings)


def test_priority_column_and_per_call_ivr_time(tmp_path: Path) -> None:
    rows = "arrival_time,intent,handle_seconds,priority,ivr_seconds\n"
    rows += "0,a,100,0,\n10,a,10,0,\n20,a,10,3,5\n"
    extra = "intents: [{name: a, ivr_seconds: 2}]\n"  # declared, with no handle_time
    sc = replay(tmp_path, rows, extra, "[{count: 1, skills: [a]}]")
    c = simulate_replication(sc.model_copy(update={"patience": None}), 0).calls
    assert list(c.queued_at) == [2.0, 12.0, 25.0]
    assert c.answered_at[2] == 102 and c.answered_at[1] == 112  # priority 3 jumps the line
    assert list(c.priority) == [0, 0, 3]


def test_calls_no_agent_can_serve_are_an_error_not_silence(tmp_path: Path) -> None:
    rows = "arrival_time,intent,handle_seconds\n0,a,10\n1,spanish,10\n"
    sc = replay(tmp_path, rows, agents="[{count: 2, skills: [a]}]")
    with pytest.raises(ScenarioError, match="spanish"):
        run_scenario(sc, workers=1)


def test_calls_left_waiting_after_the_last_logout_are_counted(tmp_path: Path) -> None:
    rows = "arrival_time,intent,handle_seconds\n0,a,100\n10,a,100\n"
    sc = replay(
        tmp_path, rows, agents="[{skills: [a], roster: [{agent: x, login: 0, logout: 50}]}]"
    )
    sc = sc.model_copy(update={"patience": None})
    res = run_scenario(sc, workers=1)
    assert res.summary["unserved"]["mean"] == 1 and res.summary["answered"]["mean"] == 1
    assert any("never answered" in w for w in res.warnings)


def test_replay_calls_after_the_horizon_are_an_error_or_counted(tmp_path: Path) -> None:
    rows = "arrival_time,intent,handle_seconds\n0,a,10\n4000,a,10\n"
    with pytest.raises(ScenarioError, match="raise duration_hours to 2") as err:
        run_scenario(replay(tmp_path, rows), workers=1)
    assert err.value.field == "duration_hours"
    sc = replay(tmp_path, rows, "")
    sc = sc.model_copy(
        update={"arrivals": sc.arrivals.model_copy(update={"drop_after_horizon": True})}
    )
    res = run_scenario(sc, workers=1)
    assert res.summary["offered"]["mean"] == 1 and any("left out" in w for w in res.warnings)


# -- KPIs per class, several thresholds, the command line ----------------------------


def test_kpis_per_intent_queue_priority_and_several_thresholds() -> None:
    sc = parse_scenario(
        base(
            arrivals={"rate_per_hour": 200},
            patience={"distribution": "exponential", "mean_seconds": 120},
            intents=[
                {"name": "a", "share": 1, "queue": "main", "skills": ["x"]},
                {"name": "a2", "share": 1, "queue": "main", "skills": ["x"]},
                {"name": "b", "share": 1, "priority": 2},
            ],
            agents=[{"count": 5, "skills": ["x", "b"]}],
            service_level_seconds=[20, 60],
            replications=3,
        )
    )
    res = run_scenario(sc, workers=1)
    s = res.summary
    assert s["service_level"]["mean"] == s["service_level_20s"]["mean"]
    assert s["service_level_60s"]["mean"] >= s["service_level_20s"]["mean"]
    by = res.breakdown
    assert set(by) == {"intent", "queue", "priority"} and set(by["priority"]) == {"0", "2"}
    assert set(by["queue"]) == {"main", "b"}
    total = sum(by["intent"][k]["offered"]["mean"] for k in ("a", "a2", "b"))
    assert total == pytest.approx(s["offered"]["mean"])
    main = by["intent"]["a"]["offered"]["mean"] + by["intent"]["a2"]["offered"]["mean"]
    assert by["queue"]["main"]["offered"]["mean"] == pytest.approx(main)
    # priority callers wait less
    assert by["priority"]["2"]["asa_seconds"]["mean"] < by["priority"]["0"]["asa_seconds"]["mean"]


def test_simulate_into_head_ends_without_a_traceback(tmp_path: Path) -> None:
    sc = write(tmp_path, "s.yaml", (ROOT / "scenarios" / "textbook.yaml").read_text())
    cmd = (
        f"{sys.executable} -m ivr.cli simulate {sc} --replications 2 --workers 1 --quiet"
        " --seed 1 | head -c 1"
    )
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr
