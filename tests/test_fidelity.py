"""Fit + replay reproduces a log the simulator did not write (simulation.synthetic)."""

from __future__ import annotations

import pytest

from simulation.calllog import read_calls, write_calls
from simulation.fit import FitOptions, fit_call_log
from simulation.runner import run_scenario
from simulation.scenario import parse_scenario
from simulation.synthetic import SyntheticCentre, generate_calls


@pytest.mark.slow
def test_fitted_scenario_reproduces_abandonment_and_asa_of_a_synthetic_log(tmp_path):
    path = tmp_path / "calls.csv"
    write_calls(path, generate_calls(SyntheticCentre(days=7, seed=3)), utc_offset_hours=2)
    log = read_calls(path)
    fit = fit_call_log(log, FitOptions(replications=3, seed=5))
    real = fit.report["overall"]
    assert 0.03 < real["abandon_rate"] < 0.3  # the log has something to reproduce
    sc = parse_scenario(fit.scenario)
    assert {i.priority for i in sc.intents} == {0, 1}  # priority customers kept apart
    result = run_scenario(sc, workers=1)
    sim_abandon = result.summary["abandon_rate"]["mean"]
    sim_asa = result.summary["asa_seconds"]["mean"]
    assert sim_abandon == pytest.approx(real["abandon_rate"], rel=0.25)
    assert sim_asa == pytest.approx(real["asa_seconds"], rel=0.35)
