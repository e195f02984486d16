"""Schedule benchmark: a 7-day, 15-minute, 3-skill covering problem solved with HiGHS.

    .venv/bin/python scripts/bench_schedule.py [--json]

Prints the schedule's cost against the lower bound (required agent-hours after
shrinkage, at each group's rate), the solver's gap and the solve time.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from simulation.schedule import Requirements, load_shift_spec, solve_schedule


def requirements(days: int = 7, width_minutes: int = 15, seed: int = 1) -> Requirements:
    """Two-peaked weekday requirements for three skills, quieter weekends."""
    spd = 24 * 60 // width_minutes
    h = (np.arange(spd) + 0.5) * width_minutes / 60
    prof = np.exp(-((h - 10.5) ** 2) / 3) + 0.8 * np.exp(-((h - 14.5) ** 2) / 4) + 0.15
    prof = np.where((h >= 7) & (h < 21), prof, 0.0)
    rng = np.random.default_rng(seed)
    scale = {"billing": 30, "tech": 18, "sales": 9}
    wd = np.array([1.15, 1.0, 0.95, 0.95, 1.05, 0.55, 0.3])
    agents = np.stack(
        [
            np.ceil(
                np.concatenate([s * wd[d] * prof for d in range(days)])
                * rng.uniform(0.95, 1.05, spd * days)
            )
            for s in scale.values()
        ]
    )
    return Requirements(tuple(scale), width_minutes * 60.0, agents, first_day=20_500)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shifts", default="scenarios/shifts/standard.yaml")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    spec = load_shift_spec(args.shifts).model_copy(
        update={"group_cost_per_hour": {"billing": 28.0, "tech": 34.0, "sales": 30.0}}
    )
    req = requirements()
    t = time.perf_counter()
    res = solve_schedule(req, spec)
    total = time.perf_counter() - t
    out = {
        "problem": f"{req.days} days x {req.agents.shape[1] // req.days} intervals x "
        f"{len(req.groups)} skills, {len(res.columns)} shift columns",
        "cost": round(res.cost, 2),
        "lower_bound_required_hours": round(res.lower_bound_cost, 2),
        "cost_over_bound": round(res.cost / res.lower_bound_cost - 1, 4),
        "solver_gap": res.gap,
        "solver_dual_bound": res.dual_bound,
        "status": res.status,
        "solve_seconds": round(res.solve_seconds, 2),
        "build_and_solve_seconds": round(total, 2),
        "shifts": int(res.x.sum()),
    }
    if args.json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        for k, v in out.items():
            sys.stdout.write(f"{k:<28}{v}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
