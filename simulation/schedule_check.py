"""Requirements for ``ivr schedule``, and the schedule checked (and mended) in the twin.

Requirements come from ``ivr staff`` (``staffing.csv``) or from a forecast
(``forecast.csv``) through Erlang A per interval with the scenario's handle time,
wrap-up and patience. The check runs the scenario with the forecast's traffic and the
schedule's available agents (on duty, breaks out, after shrinkage) through the real
router; where an interval misses the targets, the cheapest shift covering the most
failing intervals is added, and the twin runs again, until every interval holds or
the extra budget or the rounds run out.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from simulation.erlang import agents_for_targets
from simulation.errors import ScenarioError
from simulation.scenario import Scenario, parse_scenario
from simulation.schedule import Requirements, ScheduleResult

__all__ = [
    "CheckRound",
    "mend_schedule",
    "requirements_from_forecast",
    "requirements_from_staffing",
    "twin_scenario",
]

DAY = 86400.0
MIN_CALLS_TO_JUDGE = 3.0  # intervals with fewer calls per replication are not judged


def requirements_from_staffing(path: str) -> Requirements:
    """``ivr staff``'s staffing.csv: interval_start_seconds, group, agents."""
    rows = _read_csv(path, ("interval_start_seconds", "group", "agents"))
    groups = tuple(dict.fromkeys(r["group"] for r in rows))
    starts = sorted({float(r["interval_start_seconds"]) for r in rows})
    width = starts[1] - starts[0] if len(starts) > 1 else 1800.0
    agents = np.zeros((len(groups), len(starts)))
    pos = {s: k for k, s in enumerate(starts)}
    for r in rows:
        agents[groups.index(r["group"]), pos[float(r["interval_start_seconds"])]] = float(
            r["agents"]
        )
    return Requirements(groups, width, agents, first_day=0)


def _read_csv(path: str, need: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise ScenarioError(path, "", f"cannot read: {exc.strerror}") from None
    if not rows:
        raise ScenarioError(path, "", "no rows")
    missing = [c for c in need if c not in rows[0]]
    if missing:
        raise ScenarioError(path, missing[0], "column missing")
    return rows


@dataclass(frozen=True, slots=True)
class ForecastTraffic:
    first_day: int
    width: float
    calls: np.ndarray  # calls per interval


def read_forecast(path: str) -> ForecastTraffic:
    rows = _read_csv(path, ("interval_start", "calls"))
    first = rows[0]["interval_start"]
    try:
        d0 = (date.fromisoformat(first[:10]) - date(1970, 1, 1)).days
        t = [r["interval_start"] for r in rows[:2]]
        width = 1800.0
        if len(t) == 2:
            h0, m0 = int(t[0][11:13]), int(t[0][14:16])
            h1, m1 = int(t[1][11:13]), int(t[1][14:16])
            width = float(((h1 * 60 + m1) - (h0 * 60 + m0)) % 1440 * 60) or 1800.0
        calls = np.array([float(r["calls"]) for r in rows])
    except ValueError as exc:
        raise ScenarioError(path, "interval_start", f"not a forecast.csv: {exc}") from None
    return ForecastTraffic(d0, width, calls)


def _group_shares(sc: Scenario) -> np.ndarray:
    """Share of the calls each agent group takes: an intent goes to the first group that
    has all its skills."""
    shares = np.zeros(len(sc.agents))
    for it in sc.intent_list:
        for g, grp in enumerate(sc.agents):
            if set(it.required_skills) <= set(grp.skill_levels):
                shares[g] += it.share
                break
    return shares / shares.sum() if shares.sum() else np.full(len(sc.agents), 1 / len(sc.agents))


def _mean_handle(sc: Scenario) -> float:
    total = sum(i.share for i in sc.intent_list)
    return (
        sum(
            i.share * (i.handle_time or sc.handle_time).mean  # type: ignore[union-attr]
            for i in sc.intent_list
        )
        / total
        + sc.wrap_up_seconds
    )


def requirements_from_forecast(
    fc: ForecastTraffic,
    sc: Scenario,
    service_level: float,
    within: float,
    max_abandon: float | None,
) -> Requirements:
    """Erlang A (or C without patience) per interval and group, on the group's share."""
    aht = _mean_handle(sc)
    patience = sc.patience.mean if sc.patience is not None else None
    if patience is not None and not math.isfinite(patience):
        patience = None
    shares = _group_shares(sc)
    agents = np.zeros((len(sc.agents), fc.calls.size))
    for g, share in enumerate(shares):
        for t, c in enumerate(fc.calls):
            rate = c * share * 3600.0 / fc.width
            if rate > 0:
                agents[g, t] = agents_for_targets(
                    rate,
                    aht,
                    service_level,
                    within,
                    max_abandon=max_abandon,
                    patience_seconds=patience,
                )
    names = tuple(sc.group_name(g) for g in range(len(sc.agents)))
    return Requirements(names, fc.width, agents, first_day=fc.first_day)


def twin_scenario(
    base: Scenario, sched: ScheduleResult, calls: np.ndarray | None, replications: int
) -> Scenario:
    """``base`` with the schedule's available agents (and the forecast's traffic)."""
    req = sched.req
    avail = sched.available()
    data = base.model_dump(mode="json", exclude_none=True)
    groups = []
    by_name = {base.group_name(g): base.agents[g] for g in range(len(base.agents))}
    for g, name in enumerate(req.groups):
        old = by_name.get(name)
        skills = old.skill_levels if old is not None else {name: 3}
        groups.append({"name": name, "skills": skills, "counts_per_interval": _counts(avail[g])})
    data["agents"] = groups
    width_min = int(req.width // 60)
    data["interval_minutes"] = width_min
    data["duration_hours"] = req.n_intervals * req.width / 3600.0
    if calls is not None:
        data["arrivals"] = {
            "rates_per_hour": [round(float(c) * 3600.0 / req.width, 4) for c in calls],
            "interval_minutes": width_min,
        }
    data["replications"] = replications
    for key in ("routing_policy",):
        if key in data:
            data[key] = str(base.resolve(data[key]).resolve())
    return parse_scenario(data, source=f"{base.source} (scheduled)", base_dir=base.base_dir)


def _counts(v: np.ndarray) -> list[float] | list[int]:
    """Fractional heads when the scenario format takes them, else rounded."""
    if _FRACTIONS:
        return [round(float(x), 3) for x in v]
    return [int(round(float(x))) for x in v]


def _takes_fractions() -> bool:
    try:
        parse_scenario(
            {
                "arrivals": {"rate_per_hour": 1},
                "duration_hours": 1,
                "handle_time": {"mean_seconds": 1},
                "agents": [{"counts_per_interval": [0.5, 0.5]}],
            }
        )
    except Exception:  # noqa: BLE001 - any refusal means: integers only
        return False
    return True


_FRACTIONS = _takes_fractions()


@dataclass(slots=True)
class CheckRound:
    """One twin run of the schedule: per interval KPIs and what failed."""

    cost: float
    service_level: np.ndarray
    abandon_rate: np.ndarray
    offered: np.ndarray
    failing: np.ndarray  # interval indices
    overall: dict[str, float] = field(default_factory=dict)


def _run(sc: Scenario, workers: int | None):  # type: ignore[no-untyped-def]
    from simulation.runner import run_scenario

    return run_scenario(sc, workers=workers)


def _judge(result, sl: float, max_abandon: float | None, n: int) -> CheckRound:  # type: ignore[no-untyped-def]
    ints = result.intervals[:n]
    get = lambda k: np.array([r[k]["mean"] for r in ints], float)  # noqa: E731
    svc, ab, off = get("service_level"), get("abandon_rate"), get("offered")
    bad = (off >= MIN_CALLS_TO_JUDGE) & (
        (np.nan_to_num(svc, nan=1.0) < sl)
        | ((np.nan_to_num(ab, nan=0.0) > max_abandon) if max_abandon is not None else False)
    )
    overall = {
        k: result.summary[k]["mean"] for k in ("service_level", "abandon_rate", "asa_seconds")
    }
    return CheckRound(0.0, svc, ab, off, np.flatnonzero(bad), overall)


def mend_schedule(
    base: Scenario,
    sched: ScheduleResult,
    calls: np.ndarray | None,
    service_level: float,
    max_abandon: float | None,
    *,
    budget: float,
    rounds: int,
    replications: int,
    workers: int | None = None,
) -> list[CheckRound]:
    """Simulate; add the cheapest shifts covering failing intervals; repeat. Mutates ``sched.x``."""
    history: list[CheckRound] = []
    spent = 0.0
    for _ in range(rounds + 1):
        sc = twin_scenario(base, sched, calls, replications)
        check = _judge(_run(sc, workers), service_level, max_abandon, sched.req.n_intervals)
        check.cost = sched.cost
        history.append(check)
        if not check.failing.size or len(history) > rounds:
            break
        added = _add_shifts(sched, check.failing, budget - spent)
        if added <= 0:
            break
        spent += added
    return history


def _add_shifts(sched: ScheduleResult, failing: np.ndarray, money: float) -> float:
    """Greedy: the shift with the lowest cost per failing interval covered, until each
    failing interval has one more agent or the money runs out. Returns what it spent."""
    left = set(failing.tolist())
    req = sched.req
    spent = 0.0
    while left:
        best, best_score = -1, math.inf
        for k, c in enumerate(sched.columns):
            # the group that needs most in those intervals
            hit = len(left.intersection(c.cover.tolist()))
            if not hit:
                continue
            weight = float(req.agents[c.group, list(left & set(c.cover.tolist()))].sum()) + 1e-9
            score = sched.cost_of(k) / (hit * weight)
            if score < best_score:
                best, best_score = k, score
        if best < 0:
            break
        cost = sched.cost_of(best)
        if spent + cost > money:
            break
        sched.x[best] += 1
        spent += cost
        left -= set(sched.columns[best].cover.tolist())
    return spent


def write_schedule_files(sched: ScheduleResult, out: Path, twin: Scenario | None) -> dict[str, Any]:
    """schedule.csv, coverage.csv, and the twin scenario (the roster the simulator runs)."""
    import yaml

    rows = sched.rows()
    out.mkdir(parents=True, exist_ok=True)
    with (out / "schedule.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(
            fh,
            fieldnames=[
                "shift_id",
                "group",
                "date",
                "shift",
                "start",
                "end",
                "breaks",
                "paid_hours",
                "cost",
            ],
        )
        w.writeheader()
        w.writerows(rows)
    on, avail = sched.on_duty(), sched.available()
    with (out / "coverage.csv").open("w", newline="", encoding="utf-8") as fh:
        w2 = csv.writer(fh)
        w2.writerow(["interval", "group", "required", "on_duty", "available"])
        for g, name in enumerate(sched.req.groups):
            for t in range(sched.req.n_intervals):
                w2.writerow(
                    [
                        t,
                        name,
                        round(float(sched.req.agents[g, t]), 2),
                        int(on[g, t]),
                        round(float(avail[g, t]), 2),
                    ]
                )
    if twin is not None:
        data = twin.model_dump(mode="json", exclude_none=True)
        (out / "scheduled_scenario.yaml").write_text(
            yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100),
            encoding="utf-8",
        )
    return {"shifts": len(rows)}
