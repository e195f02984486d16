"""Running a scenario: replications (on all cores), each a fresh router and caller plan.

Replication ``k`` draws from ``SeedSequence(seed).spawn(R)[k]``, so results do not
depend on how many processes run them: same seed, same numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context

import numpy as np

from simulation.confidence import mean_ci
from simulation.engine import Process, RouterFactory, simulate_plan
from simulation.events import check_events, scenario_processes
from simulation.kpis import (
    breakdown_kpis,
    intent_interval_counts,
    interval_kpis,
    replication_kpis,
)
from simulation.records import Replication
from simulation.roster import build_roster
from simulation.scenario import Scenario
from simulation.times import Origin
from simulation.traffic import draw_plan, read_scenario_log

__all__ = ["ReplicationResult", "RunResult", "default_router", "run_replication", "run_scenario"]


def default_router(scenario, plan, roster):  # type: ignore[no-untyped-def]
    """The production router (``routing.router.Router``) behind the simulator's port."""
    from simulation.live_router import LiveRouter

    return LiveRouter(scenario, plan, roster)


@dataclass(frozen=True, slots=True)
class ReplicationResult:
    """KPIs of one replication: whole window, per interval, and a sample of waits."""

    index: int
    kpis: dict[str, float]
    intervals: list[dict[str, float]]
    answered_waits: np.ndarray
    calls: int
    events: int
    seconds: float
    intent_counts: np.ndarray | None = None  # (intent, interval, [queued, within T, abandoned])
    breakdown: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    dropped: int = 0  # replayed calls after the horizon, left out on request


@dataclass(slots=True)
class RunResult:
    """All replications of a scenario and the summary with 95% confidence intervals."""

    scenario: Scenario
    replications: list[ReplicationResult]
    summary: dict[str, dict[str, float]] = field(default_factory=dict)
    intervals: list[dict[str, dict[str, float]]] = field(default_factory=list)
    wall_seconds: float = 0.0
    breakdown: dict[str, dict[str, dict[str, dict[str, float]]]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        reps = self.replications
        names = reps[0].kpis.keys()
        self.summary = {k: mean_ci(r.kpis[k] for r in reps) for k in names}
        for by in reps[0].breakdown:
            classes = dict.fromkeys(c for r in reps for c in r.breakdown.get(by, {}))
            self.breakdown[by] = {
                c: {
                    k: mean_ci(r.breakdown[by].get(c, {}).get(k, math.nan) for r in reps)
                    for k in names
                    if k in next(r.breakdown[by][c] for r in reps if c in r.breakdown[by])
                }
                for c in classes
            }
        self.warnings = run_warnings(self)
        n_int = len(self.replications[0].intervals)
        self.intervals = [
            {
                k: mean_ci(r.intervals[j][k] for r in self.replications)
                for k in self.replications[0].intervals[j]
            }
            for j in range(n_int)
        ]

    @property
    def calls(self) -> int:
        return sum(r.calls for r in self.replications)


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return all(a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


def run_warnings(result: RunResult) -> list[str]:
    """What a planner must know before trusting the figures of a run."""
    reps = result.replications
    out = []
    if len(reps) > 1 and all(_same(reps[0].kpis, r.kpis) for r in reps[1:]):
        out.append(
            f"all {len(reps)} replications came out identical, so every confidence interval"
            " has zero width: nothing in this scenario is random (a replay whose log gives"
            " every patience and handle time); leave patience_seconds empty (or give"
            " patience_at_least_seconds) to draw patience from the scenario's law"
        )
    unserved = result.summary.get("unserved", {}).get("mean", 0.0)
    if unserved and unserved > 0:
        out.append(
            f"{unserved:,.1f} call(s) per replication were never answered nor abandoned:"
            " no agent able to serve them was logged in when they waited (see 'unserved')"
        )
    if reps[0].dropped:
        out.append(
            f"{reps[0].dropped} replayed call(s) after duration_hours were left out"
            " (arrivals.drop_after_horizon)"
        )
    return out


def flow_journeys(scenario: Scenario) -> list | None:
    """IVR journeys per (intent, interval) through the scenario's flow, from its seed."""
    if scenario.flow is None:
        return None
    from simulation.flow_callers import journey_pools

    return journey_pools(
        scenario, np.random.default_rng(np.random.SeedSequence([scenario.seed, 7919]))
    )


def simulate_replication(
    scenario: Scenario,
    index: int,
    router_factory: RouterFactory | None = None,
    log=None,
    journeys=None,
    processes: Sequence[Process] = (),
) -> Replication:
    """Run replication ``index`` of ``scenario`` and keep its full records.

    ``processes`` are SimPy processes (``process(twin)`` generators, see
    :class:`~simulation.engine.Twin`) started with the scenario's own ``events``.
    """
    seeds = np.random.SeedSequence(scenario.seed).spawn(scenario.replications)
    rng = np.random.default_rng(seeds[index])
    if journeys is None and scenario.flow is not None:
        journeys = flow_journeys(scenario)
    if log is None and scenario.arrivals.replay is not None:
        log = read_scenario_log(scenario)
    plan = draw_plan(scenario, rng, log, journeys)
    origin = Origin(log["origin"] if log else scenario.start_at)
    roster = build_roster(scenario, origin)
    router = (router_factory or default_router)(scenario, plan, roster)
    check_events(scenario, plan)
    procs = [*scenario_processes(scenario, origin), *processes]
    twin_rng = np.random.default_rng(np.random.SeedSequence([scenario.seed, index, 4049]))
    calls, spans, events = simulate_plan(scenario, plan, roster, router, procs, twin_rng)
    return Replication(
        index=index,
        calls=calls,
        agents=spans,
        horizon=scenario.horizon_seconds,
        warmup=scenario.warmup_minutes * 60.0,
        interval=scenario.interval_seconds,
        events=events,
        plan=plan,
    )


def run_replication(
    scenario: Scenario,
    index: int,
    router_factory: RouterFactory | None = None,
    log=None,
    by_intent: bool = False,
    journeys=None,
    processes: Sequence[Process] = (),
) -> ReplicationResult:
    """Run replication ``index``; reduce it to KPIs (``by_intent``: per intent and interval too)."""
    import time

    t0 = time.perf_counter()
    rep = simulate_replication(scenario, index, router_factory, log, journeys, processes)
    t = scenario.service_level_thresholds
    kpis = replication_kpis(rep.calls, rep.agents, t, rep.warmup, rep.horizon)
    ints = interval_kpis(rep.calls, rep.agents, t, rep.interval, rep.horizon)
    calls = rep.calls
    breakdown = _breakdown(rep, t)
    ans = ~np.isnan(calls.answered_at) & (calls.arrival >= rep.warmup)
    waits = (calls.answered_at - calls.queued_at)[ans]
    counts = None
    if by_intent:
        n_int = int(calls.intent.max()) + 1 if calls.size else 1
        counts = intent_interval_counts(
            calls, t, rep.interval, rep.horizon, max(n_int, len(scenario.intent_list))
        )
    return ReplicationResult(
        index,
        kpis,
        ints,
        waits.astype(np.float32),
        calls.size,
        rep.events,
        time.perf_counter() - t0,
        counts,
        breakdown,
        rep.plan.dropped if rep.plan is not None else 0,
    )


def _breakdown(rep: Replication, t: tuple[float, ...]) -> dict[str, dict[str, dict[str, float]]]:
    """Call KPIs by intent (true), by queue (first leg's) and by priority, where several.

    From the records, which include calls that SimPy processes added during the run.
    """
    plan, calls = rep.plan, rep.calls
    if plan is None or calls.queue is None or calls.priority is None:
        return {}
    lo, hi = rep.warmup, rep.horizon
    out: dict[str, dict[str, dict[str, float]]] = {}
    names = [it.name for it in plan.intents]
    if len(names) > 1:
        rows = breakdown_kpis(calls, t, lo, hi, calls.intent, len(names))
        out["intent"] = {n: r for n, r in zip(names, rows, strict=True) if r["offered"]}
    queues = list(dict.fromkeys(it.queue_name for it in plan.intents))
    if 1 < len(queues) != len(names):  # one queue per intent: the intent table says it all
        qi = np.asarray([queues.index(it.queue_name) for it in plan.intents], dtype=np.int64)
        rows = breakdown_kpis(calls, t, lo, hi, qi[calls.queue], len(queues))
        out["queue"] = {n: r for n, r in zip(queues, rows, strict=True) if r["offered"]}
    levels = sorted(set(calls.priority.tolist()))
    if len(levels) > 1:
        key = np.searchsorted(np.asarray(levels), calls.priority)
        rows = breakdown_kpis(calls, t, lo, hi, key, len(levels))
        out["priority"] = {str(v): r for v, r in zip(levels, rows, strict=True) if r["offered"]}
    return out


def _preflight(scenario: Scenario, log, router_factory, journeys=None) -> None:  # type: ignore[no-untyped-def]
    """Fail fast, in this process, on what every replication would trip over (policy, roster)."""
    if router_factory is not None:
        return
    from simulation.live_router import LiveRouter

    plan = draw_plan(scenario, np.random.default_rng(0), log, journeys)
    origin = Origin(log["origin"] if log else scenario.start_at)
    roster = build_roster(scenario, origin)
    check_events(scenario, plan)
    scenario_processes(scenario, origin)  # their times parse
    LiveRouter(scenario, plan, roster)


def _worker(args: tuple) -> ReplicationResult:
    scenario, index, factory, log, by_intent, journeys, processes = args
    return run_replication(scenario, index, factory, log, by_intent, journeys, processes)


def run_scenario(
    scenario: Scenario,
    *,
    workers: int | None = None,
    router_factory: RouterFactory | None = None,
    progress: Callable[[int, int], None] | None = None,
    by_intent: bool = False,
    processes: Sequence[Process] = (),
) -> RunResult:
    """Run every replication (``workers`` processes; default all cores) and summarise.

    ``processes``: SimPy processes added to every replication (module-level functions,
    so that they reach worker processes).
    """
    import time

    t0 = time.perf_counter()
    log = None
    if scenario.arrivals.replay is not None:
        log = read_scenario_log(scenario)
    journeys = flow_journeys(scenario)
    _preflight(scenario, log, router_factory, journeys)
    n = scenario.replications
    workers = max(1, min(n, workers if workers is not None else (os.cpu_count() or 1)))
    procs = tuple(processes)
    jobs = [(scenario, k, router_factory, log, by_intent, journeys, procs) for k in range(n)]
    results: list[ReplicationResult] = []
    if workers == 1:
        for k, job in enumerate(jobs):
            results.append(_worker(job))
            if progress:
                progress(k + 1, n)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
            for k, res in enumerate(pool.map(_worker, jobs)):
                results.append(res)
                if progress:
                    progress(k + 1, n)
    results.sort(key=lambda r: r.index)
    return RunResult(scenario, results, wall_seconds=time.perf_counter() - t0)
