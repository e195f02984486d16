"""The twin on SimPy: the same results as the heap loop it replaced, and SimPy processes
(a scenario's ``events:`` and planners' own) acting on a run."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Generator
from pathlib import Path

import numpy as np
import pytest
import reference_heap_engine
import yaml

from simulation import engine
from simulation.errors import ScenarioError
from simulation.live_router import LiveRouter
from simulation.roster import build_roster
from simulation.runner import run_scenario, simulate_replication
from simulation.scenario import parse_scenario
from simulation.traffic import draw_plan

ROOT = Path(__file__).resolve().parent.parent
CALL_FIELDS = (
    "arrival",
    "queued_at",
    "answered_at",
    "abandoned_at",
    "waited",
    "handled_seconds",
    "transferred",
    "callback",
)
SPAN_FIELDS = (
    "busy_agent",
    "busy_start",
    "busy_end",
    "login_agent",
    "login_start",
    "login_end",
    "overtime_start",
    "overtime_end",
)


def both_engines(sc, seed: int = 9):  # type: ignore[no-untyped-def]
    out = []
    for loop in (reference_heap_engine.simulate_plan, engine.simulate_plan):
        plan = draw_plan(sc, np.random.default_rng(seed))
        roster = build_roster(sc)
        out.append(loop(sc, plan, roster, LiveRouter(sc, plan, roster)))
    return out


@pytest.mark.parametrize(
    "name,over",
    [
        ("contact_center_day.yaml", {"duration_hours": 3}),  # policy, transfers, callbacks
        ("textbook.yaml", {"duration_hours": 2, "end_of_shift": {"no_new_calls_seconds": 90}}),
        ("replay_day.yaml", {}),  # roster, staffing table, priorities, overtime
    ],
)
def test_simpy_kernel_gives_bit_identical_records_to_the_heap_loop(name: str, over: dict) -> None:
    path = ROOT / "scenarios" / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if name == "textbook.yaml":
        over["agents"] = [{"counts_per_interval": [50, 52.5, 55, 55]}]
    sc = parse_scenario({**data, **over}, base_dir=str(path.parent))
    (c0, s0, e0), (c1, s1, e1) = both_engines(sc)
    for f in CALL_FIELDS:
        assert np.array_equal(getattr(c0, f), getattr(c1, f), equal_nan=True), f
    for f in SPAN_FIELDS:
        assert np.array_equal(getattr(s0, f), getattr(s1, f)), f
    assert e0 == e1 and c0.size > 300


# -- events: list ---------------------------------------------------------------------

DAY = {
    "arrivals": {"rate_per_hour": 240},
    "duration_hours": 3,
    "handle_time": {"distribution": "exponential", "mean_seconds": 150},
    "patience": {"distribution": "exponential", "mean_seconds": 200},
    "intents": [{"name": "billing", "share": 3}, {"name": "tech", "share": 1}],
    "agents": [
        {"name": "bill", "count": 9, "skills": ["billing"]},
        {"name": "tech", "count": 4, "skills": ["tech"]},
    ],
    "replications": 2,
    "seed": 4,
}


def test_an_outage_turns_callers_away_from_one_queue_for_its_window() -> None:
    sc = parse_scenario(
        {**DAY, "events": [{"kind": "outage", "queue": "tech", "at": "01:00", "minutes": 40}]}
    )
    c = simulate_replication(sc, 0).calls
    blocked = c.blocked
    tech = c.intent == 1
    inside = (c.queued_at >= 3600) & (c.queued_at < 3600 + 2400)
    assert blocked.sum() > 10
    assert np.array_equal(blocked, tech & inside)
    assert np.isnan(c.answered_at[blocked]).all() and np.isnan(c.abandoned_at[blocked]).all()
    res = run_scenario(sc, workers=1)
    assert res.summary["blocked"]["mean"] > 10 and res.summary["unserved"]["mean"] == 0


def test_a_campaign_adds_calls_from_its_start_and_keeps_the_others() -> None:
    plain = simulate_replication(parse_scenario(DAY), 0).calls
    sc = parse_scenario(
        {
            **DAY,
            "events": [
                {
                    "kind": "campaign",
                    "at": "01:00",
                    "until": "02:00",
                    "multiply": 2,
                    "intents": ["billing"],
                }
            ],
        }
    )
    c = simulate_replication(sc, 0).calls
    n = plain.size
    assert np.array_equal(c.arrival[:n], plain.arrival)  # the day's own callers are untouched
    added = c.arrival[n:]
    assert ((added >= 3600) & (added < 7200)).all()
    # billing is 3/4 of 240 calls/h: about 180 more in the hour
    assert 130 < added.size < 240 and (c.intent[n:] == 0).all()
    answered = ~np.isnan(c.answered_at[n:]) | ~np.isnan(c.abandoned_at[n:])
    assert answered.all()
    # the KPIs by class count the added calls too
    vip = [{"name": "billing", "share": 3}, {"name": "tech", "share": 1, "priority": 1}]
    res = run_scenario(
        sc.model_copy(update={"intents": parse_scenario({**DAY, "intents": vip}).intents}),
        workers=1,
    )
    by = res.breakdown["priority"]
    assert by["0"]["offered"]["mean"] + by["1"]["offered"]["mean"] == res.summary["offered"]["mean"]


def test_a_meeting_takes_agents_off_the_phones_and_back() -> None:
    sc = parse_scenario(
        {
            **DAY,
            "events": [
                {"kind": "meeting", "group": "bill", "agents": 4, "at": "01:00", "minutes": 30}
            ],
        }
    )
    rep = simulate_replication(sc, 0)
    s = rep.agents
    for a in range(4):
        mine = s.login_agent == a
        assert mine.sum() == 2  # logged in before and after the meeting
        gap_start = s.login_end[mine].min()
        gap_end = s.login_start[mine].max()
        assert gap_start >= 3600 and gap_end == 3600 + 1800
        busy = (s.busy_agent == a) & (s.busy_start > gap_start) & (s.busy_start < gap_end)
        assert not busy.any()
    assert (s.login_agent == 5).sum() == 1  # the fifth agent stayed


def test_event_names_are_checked_before_the_run() -> None:
    sc = parse_scenario(
        {**DAY, "events": [{"kind": "outage", "queue": "sales", "at": "01:00", "minutes": 5}]}
    )
    with pytest.raises(ScenarioError) as err:
        run_scenario(sc, workers=1)
    assert err.value.field == "events.0.queue" and "sales" in err.value.message
    with pytest.raises(ScenarioError, match="events.0.kind|discriminator|kind"):
        parse_scenario({**DAY, "events": [{"kind": "flood", "at": 0}]})


# -- planners' own SimPy processes ------------------------------------------------------


def fire_drill(twin: engine.Twin) -> Generator:
    """Every billing agent leaves for ten minutes at 00:30; a VIP calls at 00:35."""
    agents = twin.group_agents("bill")
    yield twin.env.timeout(1800)
    for a in agents:
        twin.agent_away(a)
    yield twin.env.timeout(300)
    twin.add_call(0, 100.0)
    yield twin.env.timeout(300)
    for a in agents:
        twin.agent_back(a)
    while True:  # a process that never ends does not keep the run alive
        yield twin.env.timeout(60)


def test_python_processes_join_a_run_on_every_worker() -> None:
    sc = parse_scenario(DAY)
    rep = simulate_replication(sc, 0, processes=[fire_drill])
    c = rep.calls
    vip = c.size - 1
    assert c.arrival[vip] == 2100 and c.answered_at[vip] >= 2400
    billing = (c.intent == 0) & (c.queued_at >= 1800) & (c.queued_at < 2400)
    assert np.isnan(c.answered_at[billing & (c.answered_at < 2400)]).all()
    res = run_scenario(sc, workers=2, processes=[fire_drill])
    base = run_scenario(sc, workers=2)
    assert res.summary["asa_seconds"]["mean"] > base.summary["asa_seconds"]["mean"]
    assert res.summary["offered"]["mean"] == base.summary["offered"]["mean"] + 1
    assert math.isfinite(res.summary["agent_hours"]["mean"])


@pytest.mark.slow
def test_the_readme_process_example_runs(tmp_path: Path) -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Planned events, and your own SimPy processes", 1)[1]
    script = tmp_path / "example.py"
    script.write_text(section.split("```python\n", 1)[1].split("```", 1)[0], encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("service level ") and out.stdout.strip().endswith("%")
