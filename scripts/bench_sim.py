#!/usr/bin/env python
"""Benchmark of the staffing simulator.

Simulates the textbook single-skill scenario (1000 calls/h, AHT 180 s, mean
patience 120 s, 55 agents; 200,000 calls by default, as replications of
``--calls / --replications`` calls each) three ways, on the same traffic law:

* ours: ``simulation`` on SimPy's kernel (callback events on the hot path) with the
  production router (``routing``, in its simulation mode ``record_decisions=False,
  auto_accept=True``: every decision is still the router's), on one core and on all
  cores (replications in parallel);
* plain SimPy: an idiomatic process-per-call model written below (one core);
* Ciw (benchmark-only dependency; one core).

Every figure says how many cores it used. ``single_core`` compares like with like:
ours on one core against SimPy and Ciw on one core, by wall time and by CPU time of
the process (CPU time is the robust one on a shared machine). ``headline`` compares
ours on all cores against the one-core baselines (neither SimPy nor Ciw runs
replications in parallel). Each runs once untimed first (imports, first-use caches);
``--repeat N`` keeps the fastest of N timed runs of each, taken in turns (ours, SimPy,
Ciw, ours, ...) so that a change of load on a shared machine hits all of them alike.

Ciw installs a top-level ``tests`` package that would shadow this repository's, so
install it out of the way, ``.venv/bin/pip install --target .ciw ciw``: the script
looks for it in ``.ciw/`` (after everything else on the path), or wherever
``PYTHONPATH`` says. ``--no-ciw`` leaves it out.

Then (unless ``--quick``) the 12-hour, 500-agent, 20-skill day of
``scenarios/center_500x20.yaml`` and the Wallace-Whitt (2005) cross-training
comparison. ``--json`` prints one JSON object.

Usage: ``python scripts/bench_sim.py [--calls N] [--replications R] [--repeat K] [--json]
[--quick] [--no-ciw]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CIW_DIR = ROOT / ".ciw"  # pip install --target .ciw ciw (kept apart: it ships a ``tests`` package)
if CIW_DIR.is_dir():
    sys.path.append(str(CIW_DIR))

from simulation.erlang import erlang_a_metrics  # noqa: E402
from simulation.runner import run_scenario  # noqa: E402
from simulation.scenario import load_scenario, parse_scenario  # noqa: E402

RATE_PER_HOUR = 1000.0
AHT = 180.0
PATIENCE = 120.0
AGENTS = 55
THRESHOLD = 20.0


def textbook(calls: int, replications: int, seed: int = 7):
    hours = calls / replications / RATE_PER_HOUR
    return parse_scenario(
        {
            "arrivals": {"rate_per_hour": RATE_PER_HOUR},
            "duration_hours": hours,
            "handle_time": {"distribution": "exponential", "mean_seconds": AHT},
            "patience": {"distribution": "exponential", "mean_seconds": PATIENCE},
            "agents": [{"count": AGENTS}],
            "service_level_seconds": THRESHOLD,
            "replications": replications,
            "seed": seed,
        },
        source="<bench textbook>",
    )


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its finished child processes (pool workers)."""
    import resource

    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best_of(repeat: int, runs: dict) -> dict:  # type: ignore[type-arg]
    """The fastest (wall time) of ``repeat`` runs of each of ``runs``, as ``timeit`` does
    (other work on a shared machine only ever slows a run down), taken in turns."""
    seen: dict = {name: [] for name in runs}
    for _ in range(max(1, repeat)):
        for name, run in runs.items():
            seen[name].append(run())
    return {name: min(rs, key=lambda r: r["seconds"]) for name, rs in seen.items()}


def bench_ours(calls: int, replications: int, workers: int) -> dict:
    sc = textbook(calls, replications)
    t0, c0 = time.perf_counter(), _cpu_with_children()
    res = run_scenario(sc, workers=workers)
    dt, cpu = time.perf_counter() - t0, _cpu_with_children() - c0
    return {
        "cores": workers,
        "calls": res.calls,
        "seconds": dt,
        "cpu_seconds": cpu,
        "calls_per_s": res.calls / dt,
        # calls per CPU second (all processes): per core, whatever the number of cores
        "cpu_calls_per_s": res.calls / cpu,
        "service_level": res.summary["service_level"]["mean"],
        "abandon_rate": res.summary["abandon_rate"]["mean"],
        "asa_seconds": res.summary["asa_seconds"]["mean"],
    }


class _TimedPort:
    """Wraps the live router port and adds up the time spent inside it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seconds = 0.0
        for name in ("login", "logout", "enqueue", "complete", "abandon", "next_deadline", "tick"):
            setattr(self, name, self._timed(getattr(inner, name)))

    def _timed(self, fn):
        clock = time.perf_counter

        def call(*args):
            t0 = clock()
            try:
                return fn(*args)
            finally:
                self.seconds += clock() - t0

        return call


def router_share(calls: int = 50_000) -> dict:
    """Share of our run time spent inside the production router (adapter included)."""
    from simulation.engine import simulate_plan
    from simulation.live_router import LiveRouter
    from simulation.roster import build_roster
    from simulation.traffic import draw_plan

    sc = textbook(calls, 2)
    plan = draw_plan(sc, np.random.default_rng(1))
    roster = build_roster(sc)
    port = _TimedPort(LiveRouter(sc, plan, roster))
    t0 = time.perf_counter()
    simulate_plan(sc, plan, roster, port)  # type: ignore[arg-type]
    total = time.perf_counter() - t0
    return {
        "calls": plan.size,
        "seconds": total,
        "router_seconds": port.seconds,
        "router_share": port.seconds / total,
        "calls_per_s_without_router": plan.size / max(total - port.seconds, 1e-9),
    }


def kernel_cost(calls: int = 50_000, repeat: int = 5) -> dict:
    """CPU time of one replication on SimPy's kernel against the heap loop it replaced
    (``tests/reference_heap_engine.py``, bit-identical results), same plan and router."""
    sys.path.insert(0, str(ROOT / "tests"))
    import reference_heap_engine

    from simulation.engine import simulate_plan
    from simulation.live_router import LiveRouter
    from simulation.roster import build_roster
    from simulation.traffic import draw_plan

    sc = textbook(calls, 2)
    plan = draw_plan(sc, np.random.default_rng(1))
    roster = build_roster(sc)
    best = {"simpy": math.inf, "heap": math.inf}
    for _ in range(repeat):
        for name, loop in (("simpy", simulate_plan), ("heap", reference_heap_engine.simulate_plan)):
            router = LiveRouter(sc, plan, roster)
            t0 = time.process_time()
            loop(sc, plan, roster, router)
            best[name] = min(best[name], time.process_time() - t0)
    return {
        "calls": plan.size,
        "simpy_cpu_seconds": best["simpy"],
        "heap_cpu_seconds": best["heap"],
        "simpy_over_heap": best["simpy"] / best["heap"],
    }


def simpy_model(n_calls: int, seed: int) -> dict:
    """Idiomatic SimPy M/M/c+M: one process per caller, a Resource for the agents."""
    import simpy

    rng = np.random.default_rng(seed)
    inter = rng.exponential(3600.0 / RATE_PER_HOUR, n_calls)
    service = rng.exponential(AHT, n_calls)
    patience = rng.exponential(PATIENCE, n_calls)
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=AGENTS)
    waits: list[float] = []
    abandoned = [0]

    def caller(i: int):
        arrived = env.now
        with agents.request() as req:
            got = yield req | env.timeout(patience[i])
            if req in got:
                waits.append(env.now - arrived)
                yield env.timeout(service[i])
            else:
                abandoned[0] += 1

    def source():
        for i in range(n_calls):
            yield env.timeout(inter[i])
            env.process(caller(i))

    env.process(source())
    env.run()
    w = np.asarray(waits)
    return {
        "answered_within": int((w <= THRESHOLD).sum()),
        "abandoned": abandoned[0],
        "offered": n_calls,
        "wait_sum": float(w.sum()),
        "answered": int(w.size),
    }


def bench_simpy(calls: int, replications: int) -> dict:
    per = calls // replications
    t0, c0 = time.perf_counter(), time.process_time()
    outs = [simpy_model(per, 1000 + k) for k in range(replications)]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    offered = sum(o["offered"] for o in outs)
    return {
        "cores": 1,
        "calls": offered,
        "seconds": dt,
        "cpu_seconds": cpu,
        "calls_per_s": offered / dt,
        "cpu_calls_per_s": offered / cpu,
        "service_level": sum(o["answered_within"] for o in outs) / offered,
        "abandon_rate": sum(o["abandoned"] for o in outs) / offered,
        "asa_seconds": sum(o["wait_sum"] for o in outs) / sum(o["answered"] for o in outs),
    }


def bench_ciw(calls: int, replications: int) -> dict:
    import ciw

    hours = calls / replications / RATE_PER_HOUR
    t0, c0 = time.perf_counter(), time.process_time()
    offered = within = aband = answered = 0
    wait_sum = 0.0
    for k in range(replications):
        net = ciw.create_network(
            arrival_distributions=[ciw.dists.Exponential(rate=RATE_PER_HOUR / 3600.0)],
            service_distributions=[ciw.dists.Exponential(rate=1.0 / AHT)],
            number_of_servers=[AGENTS],
            reneging_time_distributions=[ciw.dists.Exponential(rate=1.0 / PATIENCE)],
        )
        ciw.seed(2000 + k)
        q = ciw.Simulation(net)
        q.simulate_until_max_time(hours * 3600.0)
        recs = q.get_all_records()
        served = [r for r in recs if r.record_type == "service"]
        reneged = [r for r in recs if r.record_type == "renege"]
        waits = np.asarray([r.waiting_time for r in served])
        answered += len(served)
        aband += len(reneged)
        offered += len(served) + len(reneged)
        within += int((waits <= THRESHOLD).sum())
        wait_sum += float(waits.sum())
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "cores": 1,
        "calls": offered,
        "seconds": dt,
        "cpu_seconds": cpu,
        "calls_per_s": offered / dt,
        "cpu_calls_per_s": offered / cpu,
        "service_level": within / max(offered, 1),
        "abandon_rate": aband / max(offered, 1),
        "asa_seconds": wait_sum / max(answered, 1),
    }


def bench_center(workers: int) -> dict:
    sc = load_scenario(ROOT / "scenarios" / "center_500x20.yaml")
    t0 = time.perf_counter()
    res = run_scenario(sc, workers=workers)
    dt = time.perf_counter() - t0
    reps = len(res.replications)
    return {
        "scenario": "scenarios/center_500x20.yaml",
        "replications": reps,
        "calls_per_replication": res.calls / reps,
        "seconds_total": dt,
        "seconds_per_day": max(r.seconds for r in res.replications),
        "service_level": res.summary["service_level"],
        "abandon_rate": res.summary["abandon_rate"],
        "occupancy": res.summary["occupancy"],
    }


def wallace_whitt(workers: int, replications: int = 6, hours: float = 6.0) -> dict:
    """6 call types, 90 agents: 1, 2 (chained), 3 and 6 skills per agent, same head count."""
    types = [f"t{k}" for k in range(6)]
    rate = 0.95 * 90 * 3600.0 / 300.0 / 6  # per type: 95% offered load per agent
    out = {}
    for depth in (1, 2, 3, 6):
        groups = []
        for k in range(6):
            skills = {types[(k + j) % 6]: (5 if j == 0 else 3) for j in range(depth)}
            groups.append({"name": f"primary_{types[k]}", "count": 15, "skills": skills})
        sc = parse_scenario(
            {
                "arrivals": {"rate_per_hour": rate * 6},
                "duration_hours": hours,
                "warmup_minutes": 30,
                "intents": [{"name": t, "share": 1.0} for t in types],
                "handle_time": {"distribution": "exponential", "mean_seconds": 300.0},
                "patience": {"distribution": "exponential", "mean_seconds": 300.0},
                "agents": groups,
                "service_level_seconds": 20.0,
                "replications": replications,
                "seed": 11,
            },
            source=f"<wallace-whitt {depth} skills>",
        )
        res = run_scenario(sc, workers=workers)
        out[f"{depth}_skills"] = {
            k: {kk: round(v, 4) for kk, v in res.summary[k].items() if kk != "n"}
            for k in ("service_level", "asa_seconds", "abandon_rate", "p_wait", "occupancy")
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Ciw (the third baseline): .venv/bin/pip install --target .ciw ciw; this "
        "script finds it in .ciw/ (or on PYTHONPATH). --no-ciw leaves it out.",
    )
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--replications", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--quick", action="store_true", help="only the three-way speed comparison")
    ap.add_argument("--no-ciw", action="store_true", help="leave out the Ciw baseline")
    ap.add_argument(
        "--repeat", type=int, default=1, help="keep the best of N runs of each (taken in turns)"
    )
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    n, reps, k = args.calls, args.replications, args.repeat

    if not args.no_ciw:
        try:
            import ciw  # noqa: F401
        except ImportError:
            print(
                "bench_sim: Ciw is not installed: .venv/bin/pip install --target .ciw ciw "
                "(or run with --no-ciw)",
                file=sys.stderr,
            )
            return 2
    report: dict = {"calls": n, "replications": reps, "cores": cores, "repeat": k}
    # untimed warm-up of each (imports, first-use caches), so that no one pays them
    bench_ours(2_000, 2, workers=1)
    bench_simpy(2_000, 2)
    if not args.no_ciw:
        bench_ciw(2_000, 2)
    runs = {
        "ours1": lambda: bench_ours(n, reps, workers=1),
        "ours": lambda: bench_ours(n, reps, workers=cores),
        "simpy": lambda: bench_simpy(n, reps),
    }
    if not args.no_ciw:
        runs["ciw"] = lambda: bench_ciw(n, reps)
    best = best_of(k, runs)
    ours1, ours, simpy = best["ours1"], best["ours"], best["simpy"]
    ciw_r = best.get("ciw")
    report["ours_one_core"] = ours1
    report["ours_all_cores"] = ours
    report["simpy"] = simpy
    if ciw_r is not None:
        report["ciw"] = ciw_r
    # like with like: one core each; wall time, and CPU time of the process
    single: dict = {"ours_cores": 1, "simpy_cores": 1}
    single["ours_vs_simpy_wall"] = ours1["calls_per_s"] / simpy["calls_per_s"]
    single["ours_vs_simpy_cpu"] = ours1["cpu_calls_per_s"] / simpy["cpu_calls_per_s"]
    if ciw_r is not None:
        single["ciw_cores"] = 1
        single["ours_vs_ciw_wall"] = ours1["calls_per_s"] / ciw_r["calls_per_s"]
        single["ours_vs_ciw_cpu"] = ours1["cpu_calls_per_s"] / ciw_r["cpu_calls_per_s"]
    report["single_core"] = single
    # headline: ours on every core (replications in parallel) against the one-core
    # baselines, by wall time (CPU time per core is in each entry's cpu_calls_per_s)
    head: dict = {"ours_cores": cores, "simpy_cores": 1}
    head["ours_vs_simpy"] = ours["calls_per_s"] / simpy["calls_per_s"]
    if ciw_r is not None:
        head["ciw_cores"] = 1
        head["ours_vs_ciw"] = ours["calls_per_s"] / ciw_r["calls_per_s"]
    report["headline"] = head
    # flat keys, as before (ours_* without "one_core": all cores)
    report["ours_calls_per_s"] = ours["calls_per_s"]
    report["ours_one_core_calls_per_s"] = ours1["calls_per_s"]
    report["simpy_calls_per_s"] = simpy["calls_per_s"]
    report["ours_vs_simpy"] = head["ours_vs_simpy"]
    report["ours_one_core_vs_simpy"] = single["ours_vs_simpy_wall"]
    report["cpu_ours_vs_simpy"] = single["ours_vs_simpy_cpu"]
    if ciw_r is not None:
        report["ciw_calls_per_s"] = ciw_r["calls_per_s"]
        report["ours_vs_ciw"] = head["ours_vs_ciw"]
        report["ours_one_core_vs_ciw"] = single["ours_vs_ciw_wall"]
        report["cpu_ours_vs_ciw"] = single["ours_vs_ciw_cpu"]
    report["router_time"] = router_share()
    report["kernel"] = kernel_cost()
    theory = erlang_a_metrics(AGENTS, RATE_PER_HOUR, AHT, PATIENCE, THRESHOLD)
    report["erlang_a"] = {
        "service_level": theory.service_level,
        "abandon_rate": theory.abandon_rate,
        "asa_seconds": theory.asa_seconds,
    }
    if not args.quick:
        report["center_500x20"] = bench_center(cores)
        report["wallace_whitt"] = wallace_whitt(cores)

    if args.json:
        print(json.dumps(report, indent=2))
    else:

        def line(name: str, r: dict) -> None:
            print(
                f"{name:<24}{r['calls_per_s']:>10,.0f} calls/s wall "
                f"{r['cpu_calls_per_s']:>10,.0f} calls per CPU second"
            )

        line(f"ours ({cores} cores)", ours)
        line("ours (1 core)", ours1)
        line("plain SimPy (1 core)", simpy)
        if ciw_r is not None:
            line("Ciw (1 core)", ciw_r)
        print(
            f"one core each: ours / SimPy = {single['ours_vs_simpy_wall']:.2f}x wall, "
            f"{single['ours_vs_simpy_cpu']:.2f}x CPU"
            + (
                f"; ours / Ciw = {single['ours_vs_ciw_wall']:.2f}x wall, "
                f"{single['ours_vs_ciw_cpu']:.2f}x CPU"
                if ciw_r is not None
                else ""
            )
        )
        print(
            f"ours on {cores} cores vs one-core baselines: "
            f"/ SimPy = {head['ours_vs_simpy']:.2f}x"
            + (f", / Ciw = {head['ours_vs_ciw']:.2f}x" if ciw_r is not None else "")
        )
        kc = report["kernel"]
        print(
            f"SimPy kernel vs the former heap loop (same plan and router, CPU): "
            f"{kc['simpy_over_heap']:.2f}x the time"
        )
        rt = report["router_time"]
        print(
            f"time inside the router: {rt['router_share']:.0%}; the loop alone would run "
            f"{rt['calls_per_s_without_router']:,.0f} calls/s"
        )
        if "center_500x20" in report:
            c = report["center_500x20"]
            print(f"500 agents, 20 skills, 12 h: {c['seconds_per_day']:.1f} s per simulated day")
            for k, v in report["wallace_whitt"].items():
                print(
                    f"Wallace-Whitt {k}: SL {v['service_level']['mean']:.1%}, "
                    f"ASA {v['asa_seconds']['mean']:.1f} s, abandon {v['abandon_rate']['mean']:.1%}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
