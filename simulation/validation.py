"""Checking the simulator against Erlang C / Erlang A on single-skill queues."""

from __future__ import annotations

from dataclasses import dataclass

from simulation.erlang import queue_metrics
from simulation.runner import run_scenario
from simulation.scenario import Scenario, parse_scenario

__all__ = ["Agreement", "erlang_agreement", "single_skill_scenario"]

CHECKED = ("p_wait", "service_level", "asa_seconds", "abandon_rate")


@dataclass(frozen=True, slots=True)
class Agreement:
    """One KPI: analytic value, simulated mean and 95% CI, and whether the CI holds it."""

    agents: int
    load: float
    patience_seconds: float | None
    kpi: str
    analytic: float
    mean: float
    ci_low: float
    ci_high: float

    @property
    def inside(self) -> bool:
        return self.ci_low <= self.analytic <= self.ci_high


def single_skill_scenario(
    agents: int,
    load: float,
    *,
    aht: float = 180.0,
    patience: float | None = None,
    hours: float = 8.0,
    warmup_minutes: float = 60.0,
    replications: int = 10,
    seed: int = 1,
    threshold: float = 20.0,
) -> Scenario:
    """An M/M/c(+M) scenario with ``load`` Erlangs offered to ``agents`` agents."""
    data = {
        "arrivals": {"rate_per_hour": load * 3600.0 / aht},
        "duration_hours": hours,
        "warmup_minutes": warmup_minutes,
        "handle_time": {"distribution": "exponential", "mean_seconds": aht},
        "agents": [{"count": agents}],
        "service_level_seconds": threshold,
        "replications": replications,
        "seed": seed,
    }
    if patience is not None:
        data["patience"] = {"distribution": "exponential", "mean_seconds": patience}
    return parse_scenario(data, source=f"<M/M/{agents}{'+M' if patience else ''}>")


def erlang_agreement(scenario: Scenario, workers: int | None = None) -> list[Agreement]:
    """Simulate a single-skill scenario and compare each KPI with its Erlang value."""
    n = scenario.agents[0].count
    rate = float(scenario.arrivals.rate_per_hour or 0.0)
    aht = scenario.handle_time.mean  # type: ignore[union-attr]
    patience = scenario.patience.mean if scenario.patience is not None else None
    theory = queue_metrics(n, rate, aht, scenario.service_level_threshold, patience)
    result = run_scenario(scenario, workers=workers)
    out = []
    for kpi in CHECKED:
        if kpi == "abandon_rate" and patience is None:
            continue
        e = result.summary[kpi]
        out.append(
            Agreement(
                n,
                rate * aht / 3600.0,
                patience,
                kpi,
                getattr(theory, kpi),
                e["mean"],
                e["ci_low"],
                e["ci_high"],
            )
        )
    return out
