"""Finding the fewest agents per interval and group that meet the targets.

Two stages:

1. analytic: each intent is homed on the most specialised group that has all its
   skills; per interval and group, Erlang A (exponential patience given) or
   Erlang C gives a starting head count;
2. simulation: the staffed day is replayed through the router; every (group,
   interval) that misses a target gains an agent, every one that meets them tries
   one agent less (never below a count already seen to fail), until nothing
   changes. Replications reuse the scenario's seed (common random numbers), so
   successive plans are compared on the same callers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulation.erlang import agents_for_targets
from simulation.errors import ScenarioError
from simulation.runner import RunResult, run_scenario
from simulation.scenario import Distribution, Scenario
from simulation.traffic import arrival_rates_per_interval, read_call_log, replay_intents

__all__ = [
    "StaffingPlan",
    "Targets",
    "analytic_staffing",
    "find_staffing",
    "home_groups",
    "offered_per_interval",
]


@dataclass(frozen=True, slots=True)
class Targets:
    """``service_level`` answered within ``within_seconds``; at most ``max_abandon`` abandoning."""

    service_level: float = 0.8
    within_seconds: float = 20.0
    max_abandon: float | None = 0.05


@dataclass(slots=True)
class StaffingPlan:
    """Head count per group and interval, with what the last simulation measured."""

    scenario: Scenario
    targets: Targets
    groups: list[str]
    interval_seconds: float
    analytic: np.ndarray  # (group, interval) Erlang head count
    counts: np.ndarray  # (group, interval) final head count
    service_level: np.ndarray  # (group, interval) simulated, nan when no calls
    abandon_rate: np.ndarray
    offered_per_hour: np.ndarray  # (group, interval) expected calls per hour homed on the group
    iterations: int = 0
    converged: bool = False
    result: RunResult | None = field(default=None, repr=False)
    offered_erlangs: np.ndarray | None = None  # (group, interval) offered load, Erlangs
    notes: list[str] = field(default_factory=list)  # what was changed, and why

    @property
    def cells_meeting_targets(self) -> tuple[int, int]:
        """(intervals where every group with calls met the targets, intervals with calls)."""
        t = self.targets
        has_calls = ~np.isnan(self.service_level)
        with np.errstate(invalid="ignore"):
            ok = ~has_calls | (
                (self.service_level >= t.service_level)
                & ((self.abandon_rate <= t.max_abandon) if t.max_abandon is not None else True)
            )
        busy = has_calls.any(axis=0)
        return int((ok.all(axis=0) & busy).sum()), int(busy.sum())

    @property
    def cost_per_hour(self) -> list[float]:
        sc = self.scenario
        return [
            g.cost_per_hour if g.cost_per_hour is not None else sc.cost_per_agent_hour
            for g in sc.agents
        ]

    @property
    def agent_hours(self) -> float:
        return float(self.counts.sum() * self.interval_seconds / 3600.0)

    @property
    def cost(self) -> float:
        hours = self.counts.sum(axis=1) * self.interval_seconds / 3600.0
        return float(np.dot(hours, self.cost_per_hour))

    def rows(self) -> list[dict[str, float | int | str]]:
        out: list[dict[str, float | int | str]] = []
        for j in range(self.counts.shape[1]):
            for g, name in enumerate(self.groups):
                out.append(
                    {
                        "interval_start_seconds": j * self.interval_seconds,
                        "group": name,
                        "calls_per_hour": float(self.offered_per_hour[g, j]),
                        "offered_load_erlangs": float(
                            self.offered_erlangs[g, j] if self.offered_erlangs is not None
                            else math.nan
                        ),
                        "erlang_agents": int(self.analytic[g, j]),
                        "agents": int(self.counts[g, j]),
                        "service_level": float(self.service_level[g, j]),
                        "abandon_rate": float(self.abandon_rate[g, j]),
                        "cost": float(
                            self.counts[g, j]
                            * self.interval_seconds
                            / 3600.0
                            * self.cost_per_hour[g]
                        ),
                    }
                )
        return out

    def staffed_scenario(self, folder: str | os.PathLike[str] | None = None) -> Scenario:
        """The scenario with these head counts as ``counts_per_interval``; file paths are
        made relative to ``folder`` (where it will be saved), absolute without one."""

        def where(path: str) -> str:
            full = sc.resolve(path).resolve()
            return os.path.relpath(full, Path(folder).resolve()) if folder else str(full)

        sc = with_counts(self.scenario, self.counts)
        update: dict = {}
        if sc.routing_policy is not None:
            update["routing_policy"] = where(sc.routing_policy)
        if sc.arrivals.replay is not None:
            update["arrivals"] = sc.arrivals.model_copy(
                update={"replay": where(sc.arrivals.replay)}
            )
        if sc.flow is not None:
            update["flow"] = sc.flow.model_copy(update={"path": where(sc.flow.path)})
        return sc.model_copy(update=update) if update else sc


def with_counts(scenario: Scenario, counts: np.ndarray) -> Scenario:
    """A copy of ``scenario`` whose groups are staffed interval by interval with ``counts``."""
    groups = [
        g.model_copy(
            update={
                "counts_per_interval": [int(x) for x in counts[k]],
                "count": int(counts[k].max()),
            }
        )
        for k, g in enumerate(scenario.agents)
    ]
    return scenario.model_copy(update={"agents": groups})


def _requirements(scenario: Scenario, intents: list) -> list[dict[str, int]]:
    """Skill minimums of each intent: its policy queue's when a policy file is given."""
    if scenario.routing_policy is None:
        return [{s: 1 for s in it.required_skills} for it in intents]
    from routing.policy import load_policy

    policy = load_policy(scenario.resolve(scenario.routing_policy))
    out = []
    for it in intents:
        q = policy.queues.get(it.queue_name)
        out.append(
            dict(q.skills) if q is not None and q.skills else {s: 1 for s in it.required_skills}
        )
    return out


def home_groups(scenario: Scenario, intents: list) -> list[int]:
    """For each intent, the group that meets its requirement with the fewest other skills."""
    homes = []
    for it, req in zip(intents, _requirements(scenario, intents), strict=True):
        best = None
        for g, group in enumerate(scenario.agents):
            levels = group.skill_levels
            fits = all(levels.get(s, 0) >= lv for s, lv in req.items())
            if fits and (best is None or len(levels) < len(scenario.agents[best].skill_levels)):
                best = g
        if best is None:
            raise ScenarioError(scenario.source, "agents", f"no group can take intent {it.name!r}")
        homes.append(best)
    return homes


def _mean_handle(dist: Distribution | None) -> float:
    if dist is None:
        raise ScenarioError("<scenario>", "handle_time", "no handle-time law for an intent")
    return dist.mean


def offered_per_interval(scenario: Scenario) -> tuple[list, np.ndarray, np.ndarray]:
    """(intents, expected queued calls/hour per (intent, interval), mean talk s per intent)."""
    width = scenario.interval_seconds
    n = scenario.n_intervals
    if scenario.arrivals.replay is not None:
        log = read_call_log(scenario.resolve(scenario.arrivals.replay))
        intents = list(replay_intents(scenario, log["intent"]))
        index = {it.name: k for k, it in enumerate(intents)}
        rates = np.zeros((len(intents), n))
        handle_sum = np.zeros(len(intents))
        handle_n = np.zeros(len(intents))
        for t, name, h in zip(log["arrival"], log["intent"], log["handle"], strict=True):
            if t < scenario.horizon_seconds:
                k = index[str(name)]
                rates[k, int(t // width)] += 3600.0 / width
                handle_sum[k] += h
                handle_n[k] += 1
        aht = np.where(handle_n > 0, handle_sum / np.maximum(handle_n, 1), 1.0)
    else:
        intents = scenario.intent_list
        a_width, a_rates = arrival_rates_per_interval(scenario)
        # average the arrival profile over each staffing interval
        rate = np.zeros(n)
        for j in range(n):
            lo, hi = j * width, min((j + 1) * width, scenario.horizon_seconds)
            edges = np.arange(a_rates.size + 1) * a_width
            ov = np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0, None)
            rate[j] = float(np.dot(ov, a_rates) / (hi - lo))
        shares = np.array([it.share for it in intents], dtype=float)
        shares /= shares.sum()
        rates = np.outer(shares, rate)
        aht = np.array([_mean_handle(it.handle_time or scenario.handle_time) for it in intents])
    if scenario.flow is not None and scenario.arrivals.replay is None:
        from simulation.runner import flow_journeys

        pools = flow_journeys(scenario) or []
        kept = np.array(
            [[np.mean([j.queue is not None for j in pool]) for pool in row] for row in pools]
        )
        return intents, rates * kept, aht
    contained = np.array([it.containment for it in intents])
    return intents, rates * (1.0 - contained)[:, None], aht


def analytic_staffing(scenario: Scenario, targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """(Erlang head count per (group, interval), expected calls per hour per (group, interval))."""
    counts, calls, _ = _analytic(scenario, targets)
    return counts, calls


def _analytic(
    scenario: Scenario, targets: Targets
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Erlang head count, calls per hour and offered load (Erlangs) per (group, interval)."""
    intents, rates, aht = offered_per_interval(scenario)
    homes = home_groups(scenario, intents)
    n_g, n_j = len(scenario.agents), rates.shape[1]
    speed = scenario.proficiency_speed
    counts = np.zeros((n_g, n_j), dtype=np.int64)
    load = np.zeros((n_g, n_j))
    erlangs = np.zeros((n_g, n_j))
    patience = scenario.patience.mean if scenario.patience is not None else None
    for g in range(n_g):
        mine = [k for k in range(len(intents)) if homes[k] == g]
        if not mine:
            continue
        levels = scenario.agents[g].skill_levels
        wrap = scenario.agents[g].wrap_up_seconds
        wrap = scenario.wrap_up_seconds if wrap is None else wrap
        eff = np.array(
            [
                aht[k] * speed.get(min(levels.get(s, 3) for s in intents[k].required_skills), 1.0)
                + wrap
                for k in mine
            ]
        )
        for j in range(n_j):
            lam = rates[mine, j]
            total = float(lam.sum())
            load[g, j] = total
            if total <= 0:
                continue
            mean_aht = float(np.dot(lam, eff) / total)
            erlangs[g, j] = total * mean_aht / 3600.0
            counts[g, j] = agents_for_targets(
                total,
                mean_aht,
                targets.service_level,
                targets.within_seconds,
                max_abandon=targets.max_abandon if patience is not None else None,
                patience_seconds=patience,
            )
    return counts, load, erlangs


def _measure(result: RunResult, homes: list[int], n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    counts = np.sum(
        [r.intent_counts for r in result.replications if r.intent_counts is not None], axis=0
    )
    n_j = counts.shape[1]
    agg = np.zeros((n_groups, n_j, 3))
    for k, g in enumerate(homes):
        if k < counts.shape[0]:
            agg[g] += counts[k]
    with np.errstate(invalid="ignore", divide="ignore"):
        sl = agg[:, :, 1] / agg[:, :, 0]
        ab = agg[:, :, 2] / agg[:, :, 0]
    return sl, ab


def find_staffing(
    scenario: Scenario,
    targets: Targets,
    *,
    max_iterations: int = 12,
    workers: int | None = None,
    router_factory=None,
    progress: Callable[[int, int], None] | None = None,
) -> StaffingPlan:
    """Erlang start, then simulate-and-correct until every (group, interval) meets the targets."""
    # staffing answers "how many per interval"; fitting shifts to it is a later step
    notes = [
        f"group {scenario.group_name(k)!r}: its shift {_hhmm(g.shift.start_hour)}-"
        f"{_hhmm(g.shift.end_hour)} was ignored: staffing finds the head count each interval "
        "needs, at any hour; fit shifts to staffing.csv afterwards"
        for k, g in enumerate(scenario.agents)
        if g.shift.start_hour > 0 or g.shift.end_hour < scenario.duration_hours
    ]
    free_groups = [
        g.model_copy(
            update={"shift": g.shift.model_copy(update={"start_hour": 0.0, "end_hour": math.inf})}
        )
        for g in scenario.agents
    ]
    scenario = scenario.model_copy(
        update={"service_level_seconds": targets.within_seconds, "agents": free_groups}
    )
    analytic, load, erlangs = _analytic(scenario, targets)
    intents, _, _ = offered_per_interval(scenario)
    homes = home_groups(scenario, intents)
    for k in range(len(scenario.agents)):
        if k not in homes:
            notes.append(
                f"group {scenario.group_name(k)!r} is staffed at 0: every intent it can take "
                "has a more specialised group, which is staffed instead (blended agents only "
                "help there once those are busy)"
            )
    counts = analytic.copy()
    fail_at = np.full(counts.shape, -1, dtype=np.int64)
    sl = ab = np.full(counts.shape, math.nan)
    result = None
    converged = False
    it = 0
    for it in range(1, max_iterations + 1):
        result = run_scenario(
            with_counts(scenario, counts),
            workers=workers,
            router_factory=router_factory,
            by_intent=True,
        )
        if progress:
            progress(it, max_iterations)
        sl, ab = _measure(result, homes, counts.shape[0])
        ok = np.isnan(sl) | (
            (sl >= targets.service_level)
            & ((ab <= targets.max_abandon) if targets.max_abandon is not None else True)
        )
        fail_at = np.where(ok, fail_at, np.maximum(fail_at, counts))
        grow = ~ok
        shrink = ok & (counts - 1 > fail_at) & (counts > 0) & ~np.isnan(sl)
        if not grow.any() and not shrink.any():
            converged = True
            break
        if it == max_iterations:  # out of budget: keep the safe side (adds only, unverified)
            counts = counts + grow.astype(np.int64)
            break
        counts = counts + grow.astype(np.int64) - shrink.astype(np.int64)
    return StaffingPlan(
        scenario=scenario,
        targets=targets,
        groups=[scenario.group_name(g) for g in range(len(scenario.agents))],
        interval_seconds=scenario.interval_seconds,
        analytic=analytic,
        counts=counts,
        service_level=sl,
        abandon_rate=ab,
        offered_per_hour=load,
        iterations=it,
        converged=converged,
        result=result,
        offered_erlangs=erlangs,
        notes=notes,
    )


def _hhmm(hours: float) -> str:
    if not math.isfinite(hours):
        return "end"
    return f"{int(hours):02d}:{round(hours % 1 * 60):02d}"
