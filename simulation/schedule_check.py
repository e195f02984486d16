"""Requirements for ``ivr schedule``, and the schedule checked (and mended) in the twin.

Requirements come from ``ivr staff`` (``staffing.csv``) or from a forecast
(``forecast.csv``) through Erlang A per interval with the scenario's handle time,
wrap-up and patience. The schedule becomes a per-agent roster (``roster.csv``: one row
per shift, login, logout and breaks; agent ids reused from day to day). The check runs
the scenario with the forecast's traffic and that roster through the real router, with
the shift rules' shrinkage as the groups' ``shrinkage`` (an even share of the shifts
takes no calls); where an interval misses the targets, the cheapest shift covering the
most failing intervals is added, and the twin runs again, until every interval holds or
the extra budget or the rounds run out.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date, timedelta
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


def requirements_from_staffing(path: str, first_day: int = 0) -> Requirements:
    """``ivr staff``'s staffing.csv: interval_start_seconds, group, agents (``first_day``:
    the date of time 0, in days since 1970-01-01)."""
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
    return Requirements(groups, width, agents, first_day=first_day)


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


ROSTER_COLUMNS = (
    "agent_id",
    "group",
    "skills",
    "date",
    "shift_id",
    "shift",
    "login",
    "logout",
    "breaks",
)


# an inline roster entry of the twin scenario from a roster.csv row
_ENTRY_OF_ROW = {"agent": "agent_id", "login": "login", "logout": "logout", "breaks": "breaks"}


def _group_skills(base: Scenario, groups: tuple[str, ...]) -> dict[str, dict[str, int]]:
    by_name = {base.group_name(g): base.agents[g] for g in range(len(base.agents))}
    return {
        name: (by_name[name].skill_levels if name in by_name else {name: 3}) for name in groups
    }


def roster_rows(sched: ScheduleResult, skills: dict[str, dict[str, int]]) -> list[dict[str, str]]:
    """One row per scheduled shift (``ROSTER_COLUMNS``): login and logout as ISO local
    times, breaks as clock times. Agent ids are reused across days: each shift, by login,
    goes to the group's lowest-numbered agent not working that date whose last shift has
    ended (so the fewest agents of each group work it)."""
    rows = sched.rows()
    for r in rows:
        day = date.fromisoformat(r["date"])
        r["_login"] = f"{r['date']}T{r['start']}"
        end, past = _clock(r["end"])
        r["_logout"] = f"{(day + timedelta(days=past)).isoformat()}T{end}"
        r["breaks"] = " ".join(
            "-".join(_clock(t)[0] for t in b.split("-")) for b in r["breaks"].split()
        )
    out = []
    free: dict[str, list[tuple[str, str]]] = {}  # group -> per agent: (last logout, last date)
    for r in sorted(rows, key=lambda r: (r["group"], r["_login"], r["shift_id"])):
        pool = free.setdefault(r["group"], [])
        k = next(
            (j for j, (until, day) in enumerate(pool) if until <= r["_login"] and day != r["date"]),
            len(pool),
        )
        if k == len(pool):
            pool.append(("", ""))
        pool[k] = (r["_logout"], r["date"])
        out.append(
            {
                "agent_id": f"{r['group']}-{k + 1:03d}",
                "group": r["group"],
                "skills": ";".join(f"{s}={v}" for s, v in skills[r["group"]].items()),
                "date": r["date"],
                "shift_id": r["shift_id"],
                "shift": r["shift"],
                "login": r["_login"],
                "logout": r["_logout"],
                "breaks": r["breaks"],
            }
        )
    return out


def _clock(hhmm: str) -> tuple[str, int]:
    """``26:30`` -> (``02:30``, 1 day later)."""
    h, m = hhmm.split(":")
    return f"{int(h) % 24:02d}:{m}", int(h) // 24


def twin_scenario(
    base: Scenario,
    sched: ScheduleResult,
    calls: np.ndarray | None,
    replications: int,
) -> Scenario:
    """``base`` staffed by the schedule's roster (inline rows, as roster.csv has them) and
    with the forecast's traffic; time 0 is the first day's midnight."""
    req = sched.req
    data = base.model_dump(mode="json", exclude_none=True)
    skills = _group_skills(base, req.groups)
    rows = roster_rows(sched, skills)
    groups = []
    for name in req.groups:
        entries = [
            {k: r[c] for k, c in _ENTRY_OF_ROW.items()}
            for r in rows
            if r["group"] == name
        ]
        group: dict[str, Any] = {"name": name, "skills": skills[name]}
        if entries:
            group.update(roster=entries, shrinkage=sched.spec.shrinkage)
        else:  # no shift for this group
            group["count"] = 0
        groups.append(group)
    data["agents"] = groups
    data["start_at"] = (date(1970, 1, 1) + timedelta(days=req.first_day)).isoformat() + "T00:00:00"
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
    """schedule.csv, roster.csv (per agent shift), coverage.csv, and the twin scenario
    (``scheduled_scenario.yaml``, staffed from roster.csv)."""
    import yaml

    rows = sched.rows()
    out.mkdir(parents=True, exist_ok=True)
    if twin is not None:
        skills = {twin.group_name(g): twin.agents[g].skill_levels for g in range(len(twin.agents))}
    else:
        skills = {name: {name: 3} for name in sched.req.groups}
    with (out / "roster.csv").open("w", newline="", encoding="utf-8") as fh:
        rw = csv.DictWriter(fh, fieldnames=ROSTER_COLUMNS)
        rw.writeheader()
        rw.writerows(roster_rows(sched, skills))
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
        for group in data["agents"]:
            if isinstance(group.get("roster"), list):
                group["roster"] = "roster.csv"  # its rows of this group
        (out / "scheduled_scenario.yaml").write_text(
            yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100),
            encoding="utf-8",
        )
    return {"shifts": len(rows)}
