"""``ivr schedule``: the covering program, its bound, breaks, and the twin's mending."""

from __future__ import annotations

import argparse
import csv
import json
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from simulation.cli import add_commands
from simulation.roster import build_roster
from simulation.runner import simulate_replication
from simulation.scenario import load_scenario, parse_scenario
from simulation.schedule import Requirements, ShiftSpec, solve_schedule
from simulation.schedule_check import mend_schedule, roster_rows, twin_scenario

SPEC = {
    "shifts": [
        {
            "name": "full",
            "hours": 8,
            "first_start": "06:00",
            "last_start": "12:00",
            "breaks": [{"minutes": 30, "earliest": 3.5, "latest": 4.5}],
        },
        {"name": "part", "hours": 4, "first_start": "08:00", "last_start": "16:00", "max_heads": 3},
    ],
    "shrinkage": 0.2,
    "cost_per_hour": 20,
    "time_limit_seconds": 30,
}


def _req(seed: int = 0) -> Requirements:
    rng = np.random.default_rng(seed)
    h = (np.arange(48) + 0.5) / 2
    need = np.where(
        (h >= 7) & (h < 19), np.ceil(6 * np.exp(-((h - 12) ** 2) / 12) + rng.random(48)), 0
    )
    return Requirements(("default",), 1800.0, need[None, :], first_day=20_500)


def test_schedule_covers_every_interval_after_shrinkage_within_the_rules():
    spec = ShiftSpec.model_validate(SPEC)
    req = _req()
    res = solve_schedule(req, spec)
    assert res.status == "optimal" and (res.gap or 0) <= spec.mip_gap + 1e-9
    assert np.all(res.available()[0] >= req.agents[0] - 1e-9)
    assert res.cost >= res.lower_bound_cost
    assert res.dual_bound is None or res.cost >= res.dual_bound - 1e-6
    rows = res.rows()
    assert sum(r["shift"] == "part" for r in rows) <= 3  # max_heads
    for r in rows:
        if r["shift"] == "full":
            b0 = r["breaks"].split("-")[0]
            start_h = int(r["start"][:2]) + int(r["start"][3:]) / 60
            at = int(b0[:2]) + int(b0[3:]) / 60 - start_h
            assert 3.5 <= at <= 4.5 and r["paid_hours"] == 7.5


def test_dropping_any_shift_leaves_an_interval_short():
    """Optimal covering has no redundant shift."""
    spec = ShiftSpec.model_validate({**SPEC, "mip_gap": 0.0})
    req = _req(3)
    res = solve_schedule(req, spec)
    for k in np.flatnonzero(res.x):
        res.x[k] -= 1
        assert np.any(res.available()[0] < req.agents[0] - 1e-9)
        res.x[k] += 1


@pytest.mark.slow
def test_twin_finds_short_intervals_and_adds_the_shifts_that_fix_them():
    base = parse_scenario(
        {
            "arrivals": {"rate_per_hour": 60},
            "duration_hours": 24,
            "handle_time": {"distribution": "exponential", "mean_seconds": 240},
            "patience": {"distribution": "exponential", "mean_seconds": 120},
            "agents": [{"count": 1}],
            "replications": 2,
            "seed": 2,
        }
    )
    spec = ShiftSpec.model_validate(SPEC)
    thin = Requirements(
        ("default",),
        1800.0,
        np.where((np.arange(48) >= 16) & (np.arange(48) < 36), 1.0, 0.0)[None, :],
    )
    rates = np.where((np.arange(48) >= 16) & (np.arange(48) < 36), 30.0, 0.0)  # 60/h, 09-18
    sched = solve_schedule(thin, spec)
    before = sched.cost
    history = mend_schedule(
        base, sched, rates, 0.8, 0.1, budget=2000, rounds=3, replications=2, workers=1
    )
    assert history[0].failing.size > 0
    assert sched.cost > before and history[-1].failing.size < history[0].failing.size
    sc = twin_scenario(base, sched, rates, 2)
    assert sc.agents[0].roster and sc.agents[0].shrinkage == SPEC["shrinkage"]


def _spans(row: dict, day0: date) -> list[tuple[float, float]]:
    """A roster.csv row's logged-in spans, in seconds from ``day0``'s midnight."""

    def at(stamp: str) -> float:
        d = datetime.fromisoformat(stamp)
        return (d.date() - day0).days * 86400.0 + d.hour * 3600.0 + d.minute * 60.0

    login, logout = at(row["login"]), at(row["logout"])
    edges = [login]
    for b in row["breaks"].split():
        a, z = (at(f"{row['login'][:10]}T{t}") for t in b.split("-"))
        edges += [a + 86400.0 * (a < login), z + 86400.0 * (z < login)]
    return list(zip(edges[::2], [*edges[1::2], logout], strict=True))


@pytest.mark.parametrize("shrinkage", [0.0, 0.25])
def test_the_twin_logs_agents_in_exactly_as_the_schedule_says_breaks_honoured(shrinkage):
    spec = ShiftSpec.model_validate({**SPEC, "shrinkage": shrinkage})
    req = _req(5)
    sched = solve_schedule(req, spec)
    base = parse_scenario(
        {
            "arrivals": {"rate_per_hour": 1},
            "duration_hours": 24,
            "handle_time": {"distribution": "exponential", "mean_seconds": 300},
            "patience": {"distribution": "exponential", "mean_seconds": 600},
            "agents": [{"count": 1}],
            "seed": 3,
        }
    )
    rates = np.where(req.agents[0] > 0, 60.0, 0.0)  # calls per interval: agents kept busy
    rows = roster_rows(sched, {"default": {"default": 3}})
    assert len(rows) == int(sched.x.sum()) and {r["shift_id"] for r in rows} == {
        r["shift_id"] for r in sched.rows()
    }
    day0 = date(1970, 1, 1) + timedelta(days=req.first_day)
    expected = {r["shift_id"]: _spans(r, day0) for r in rows}
    # the roster, all of it, is the schedule's coverage, interval by interval
    mid = (np.arange(req.n_intervals) + 0.5) * req.width
    on = [sum(a <= t < b for sp in expected.values() for a, b in sp) for t in mid]
    assert on == sched.on_duty()[0].astype(int).tolist()
    sc = twin_scenario(base, sched, rates, 2)
    rep = simulate_replication(sc, 0)
    by_agent: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        by_agent.setdefault(r["agent_id"], []).extend(expected[r["shift_id"]])
    agents = {m.index: m.name for m in build_roster(sc)}
    spans = rep.agents
    seen: dict[str, list[float]] = {}
    for a, start, end in zip(spans.login_agent, spans.login_start, spans.login_end, strict=True):
        seen.setdefault(agents[int(a)], []).append(start)
        sched_end = next(z for x, z in by_agent[agents[int(a)]] if x == start)
        assert end >= sched_end  # finishing the call in hand at a break or logout
    logins = {(r["agent_id"], expected[r["shift_id"]][0][0]) for r in rows}
    kept = sum((name, t) in logins for name, starts in seen.items() for t in starts)
    n = len(rows)  # the shrinkage share takes no calls (whole shifts, see roster._shrink)
    assert abs(kept - n * (1 - shrinkage)) <= 3 * (n * shrinkage * (1 - shrinkage)) ** 0.5
    assert kept < n if shrinkage else kept == n
    for name, starts in seen.items():  # logged in exactly when the schedule says
        assert set(starts) <= {x for x, _ in by_agent[name]}
    busy = 0
    for a, start in zip(spans.busy_agent, spans.busy_start, strict=True):
        inside = [x <= start < z for x, z in by_agent[agents[int(a)]]]
        assert any(inside), f"agent {agents[int(a)]} took a call at {start} off shift or on a break"
        busy += 1
    assert busy > 50 and rep.calls.size > 100


def test_schedule_cli_needs_one_source_and_range_checks(tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(
        ["schedule", "--scenario", "s.yaml", "--shifts", "x.yaml", "--out", str(tmp_path)]
    )
    assert args.func(args) == 2
    assert "exactly one of --forecast and --requirements" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(
            ["schedule", "--scenario", "s", "--shifts", "x", "--out", "o", "--time-limit", "0"]
        )
    assert "must be > 0" in capsys.readouterr().err


@pytest.mark.slow
def test_schedule_cli_writes_schedule_coverage_and_a_scenario_the_twin_runs(tmp_path, capsys):
    sc = tmp_path / "s.yaml"
    sc.write_text(
        "arrivals: {rate_per_hour: 40}\nduration_hours: 24\n"
        "handle_time: {distribution: exponential, mean_seconds: 200}\n"
        "patience: {distribution: exponential, mean_seconds: 150}\n"
        "agents: [{count: 1}]\n"
    )
    shifts = tmp_path / "shifts.yaml"
    import yaml

    shifts.write_text(yaml.safe_dump(SPEC))
    fc = tmp_path / "forecast.csv"
    with fc.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["interval_start", "calls"])
        for j in range(48):
            w.writerow([f"2026-02-16T{j // 2:02d}:{30 * (j % 2):02d}", 20 if 16 <= j < 36 else 0])
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    out = tmp_path / "out"
    args = parser.parse_args(
        [
            "schedule",
            "--forecast",
            str(fc),
            "--scenario",
            str(sc),
            "--shifts",
            str(shifts),
            "--out",
            str(out),
            "--replications",
            "2",
            "--rounds",
            "1",
            "--workers",
            "1",
        ]
    )
    code = args.func(args)
    text = capsys.readouterr().out
    assert code in (0, 1) and "HiGHS optimal" in text and "twin round 0" in text
    doc = json.loads((out / "schedule.json").read_text())
    assert doc["cost_final"] >= doc["lower_bound_cost"] and doc["twin_rounds"]
    rows = list(csv.DictReader((out / "schedule.csv").read_text().splitlines()))
    assert rows and rows[0]["date"] == "2026-02-16"
    assert (out / "scheduled_scenario.yaml").exists() and (out / "coverage.csv").exists()
    roster = list(csv.DictReader((out / "roster.csv").read_text().splitlines()))
    assert len(roster) == len(rows) and set(roster[0]) >= {"agent_id", "login", "logout", "breaks"}
    twin = load_scenario(out / "scheduled_scenario.yaml")
    assert twin.agents[0].roster == "roster.csv"
    kept = build_roster(twin)
    assert len(kept) <= len({r["agent_id"] for r in roster}) and kept
    capsys.readouterr()
    sim = parser.parse_args(  # a roster-only scenario runs as is (no head count anywhere)
        [
            "simulate",
            str(out / "scheduled_scenario.yaml"),
            "--replications",
            "2",
            "--workers",
            "1",
            "--quiet",
            "--json",
        ]
    )
    assert sim.func(sim) == 0
    assert json.loads(capsys.readouterr().out)["answered"]["mean"] > 0
