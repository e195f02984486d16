"""``ivr fit`` round trip: simulate a known scenario to a call log, fit it, recover it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.calllog import read_calls
from simulation.cli import add_commands
from simulation.fit import FitOptions, fit_call_log
from simulation.laws import fit_patience
from simulation.runner import simulate_replication
from simulation.scenario import load_scenario, parse_scenario
from simulation.sim_log import write_replication_log

DAY0 = 20_500 * 86400.0  # a Monday (2026-02-16) on the centre's clock


def _scenario(rate, handle_kind, handle_mean, cv, patience, agents, seed):
    handle = {"distribution": handle_kind, "mean_seconds": handle_mean}
    if handle_kind != "exponential":
        handle["cv"] = cv
    return parse_scenario(
        {
            "arrivals": {"rate_per_hour": rate},
            "duration_hours": 24,
            "handle_time": handle,
            "patience": {"distribution": "exponential", "mean_seconds": patience},
            "agents": [{"count": agents}],
            "wrap_up_seconds": 10,
            "replications": 2,
            "seed": seed,
        }
    )


def _round_trip(sc, tmp_path: Path):
    path = tmp_path / "calls.csv"
    write_replication_log(path, simulate_replication(sc, 0), sc, start=DAY0)
    return fit_call_log(read_calls(path), FitOptions(interval_minutes=30))


@pytest.mark.slow
@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    rate=st.floats(150, 260),
    handle_kind=st.sampled_from(["exponential", "lognormal", "gamma"]),
    handle_mean=st.floats(150, 300),
    cv=st.floats(0.5, 1.3),
    patience=st.floats(60, 300),
    utilisation=st.floats(0.97, 1.06),
    seed=st.integers(0, 10_000),
)
def test_fit_recovers_a_simulated_scenario_within_its_intervals(
    tmp_path_factory, rate, handle_kind, handle_mean, cv, patience, utilisation, seed
):
    load = rate * (handle_mean + 10) / 3600
    agents = max(2, round(load / utilisation))
    sc = _scenario(rate, handle_kind, handle_mean, cv, patience, agents, seed)
    fit = _round_trip(sc, tmp_path_factory.mktemp("rt"))
    rep = fit.report
    lo, hi = rep["arrivals"]["rate_per_hour"]["ci"]
    assert lo <= rate <= hi
    h = rep["handle_time"]["all"]
    assert h["mean_ci"][0] <= handle_mean <= h["mean_ci"][1]
    true_cv = 1.0 if handle_kind == "exponential" else cv
    assert h["cv"] == pytest.approx(true_cv, rel=0.15)
    lo, hi = rep["patience"]["hazard_mean_ci"]
    assert lo <= patience <= hi
    staff = fit.scenario["agents"][0]["counts_per_interval"]
    measured = np.asarray(rep["staffing"]["pools"]["agents_default"]["estimate_per_interval"])
    assert rep["staffing"]["pools"]["agents_default"]["intervals_measured_from_waits"] >= 12
    assert abs(float(np.median(staff)) - agents) <= 1, (staff, agents)
    assert abs(float(np.median(measured)) - agents) <= 1
    assert fit.scenario["wrap_up_seconds"] == 10
    parse_scenario(fit.scenario)  # the simulator takes it as is


@pytest.mark.slow
@settings(max_examples=3, deadline=None, derandomize=True)
@given(
    queues=st.integers(2, 3),
    shares=st.lists(st.floats(0.3, 1.0), min_size=3, max_size=3),
    handle=st.lists(st.floats(120, 360), min_size=3, max_size=3),
    prios=st.lists(st.integers(0, 2), min_size=3, max_size=3),
    vip_share=st.floats(0.15, 0.4),
    rate=st.floats(200, 280),
    patience=st.floats(90, 300),
    seed=st.integers(0, 10_000),
)
def test_fit_recovers_queues_and_priorities_within_their_intervals(
    tmp_path_factory, queues, shares, handle, prios, vip_share, rate, patience, seed
):
    """Several queues, each with its priority, and priority customers inside the first
    one (same queue and skill, a head start): every class comes back with its queue,
    priority and share of calls, every queue with its handle time, within their intervals."""
    names = ["billing", "tech", "sales"][:queues]
    law = lambda m: {"distribution": "exponential", "mean_seconds": m}  # noqa: E731
    intents = [
        {"name": n, "share": shares[k], "priority": prios[k], "handle_time": law(handle[k])}
        for k, n in enumerate(names)
    ]
    intents.append(
        {
            "name": "vip",
            "queue": names[0],
            "skills": [names[0]],
            "share": shares[0] * vip_share,
            "priority": prios[0] + 3,
            "handle_time": law(handle[0]),
        }
    )
    total = sum(i["share"] for i in intents)
    load = rate * sum(i["share"] * (i["handle_time"]["mean_seconds"] + 10) for i in intents)
    agents = max(3, round(load / total / 3600 / 0.98))
    sc = parse_scenario(
        {
            "arrivals": {"rate_per_hour": rate},
            "duration_hours": 24,
            "intents": intents,
            "patience": law(patience),
            "agents": [{"count": agents, "skills": names}],
            "wrap_up_seconds": 10,
            "replications": 2,
            "seed": seed,
        }
    )
    fit = _round_trip(sc, tmp_path_factory.mktemp("rtq"))
    rep = fit.report
    n = rep["overall"]["calls"]
    for it in intents:
        q = it.get("queue", it["name"])
        several = q == names[0]  # the first queue has two priorities
        cls = rep["classes"][f"{q}/p{it['priority']}" if several else q]
        assert cls["queue"] == q and cls["priority"] == it["priority"]
        p = it["share"] / total
        assert abs(cls["calls"] / n - p) <= 3.3 * (p * (1 - p) / n) ** 0.5  # 99.9%
    for k, q in enumerate(names):
        lo, hi = rep["handle_time"]["by_queue"][q]["mean_ci"]
        assert lo <= handle[k] <= hi, (q, lo, handle[k], hi)
    lo, hi = rep["patience"]["hazard_mean_ci"]
    assert lo <= patience <= hi
    first = [c for name, c in rep["classes"].items() if c["queue"] == names[0]]
    vip = max(first, key=lambda c: c["priority"])
    plain = min(first, key=lambda c: c["priority"])
    assert vip["asa_seconds"] < plain["asa_seconds"]  # the head start shows
    fitted = {(i.get("queue", i["name"]), i["priority"]) for i in fit.scenario["intents"]}
    fitted = {(q.split("/")[0], p) for q, p in fitted}
    assert fitted == {(i.get("queue", i["name"]), i["priority"]) for i in intents}
    parse_scenario(fit.scenario)  # the simulator takes it as is


def test_patience_counts_answered_callers_as_censored():
    """Answered callers count as censored: the estimate is the true mean, not the
    (much shorter) mean wait of those who hung up."""
    rng = np.random.default_rng(5)
    patience = rng.exponential(200.0, 20_000)
    wait_needed = rng.exponential(60.0, 20_000)
    abandoned = patience < wait_needed
    wait = np.minimum(patience, wait_needed)
    fit = fit_patience(wait, abandoned, rng)
    lo, hi = fit["hazard_mean_ci"]
    assert fit["hazard_mean_seconds"] == pytest.approx(200.0, rel=0.05)
    assert lo < fit["hazard_mean_seconds"] < hi and hi - lo < 20
    assert wait[abandoned].mean() < 60  # the naive estimate is far off
    km = fit["kaplan_meier"]
    s60 = km["survival"][km["seconds"].index(60.0)]
    assert s60 == pytest.approx(np.exp(-60 / 200), abs=0.01)


@pytest.mark.slow
def test_fit_cli_writes_a_scenario_the_simulator_runs(tmp_path, capsys):
    sc = _scenario(200, "lognormal", 200, 0.8, 120, 12, 4)
    path = tmp_path / "calls.csv"
    write_replication_log(path, simulate_replication(sc, 0), sc, start=DAY0)
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    out = tmp_path / "fitted" / "scenario.yaml"
    args = parser.parse_args(["fit", str(path), "--out", str(out), "--interval", "60"])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "patience (censored)" in text and "bad" in text
    fitted = load_scenario(out)
    assert fitted.duration_hours == 24 and fitted.arrivals.interval_minutes == 60
    report = json.loads((out.parent / "fit_report.json").read_text())
    assert report["calendar"]["span"] == "log" and report["log"]["bad_rows"] == 0
    assert "staffing" in report and "estimate" in report["staffing"]["method"]
    assert yaml.safe_load(out.read_text())["agents"][0]["skills"] == ["default"]
    if pytest.importorskip("matplotlib"):
        assert (out.parent / "fit_patience.png").stat().st_size > 1000
