"""``ivr fit``: a scenario the simulator runs, fitted from a call log, with its evidence.

* arrivals: calls per interval for each weekday, mean and day-to-day spread;
* handle time per queue: exponential / lognormal / gamma / empirical (:mod:`simulation.laws`);
* patience from censored waits (answered callers are censored, never ignored);
* effective staff per interval and agent pool (:mod:`simulation.staff_estimate`), an estimate;
* priorities, transfer and short-abandon rates.

The scenario's calendar (``span``): ``log`` replays the log's own days (its arrival
rates and staff, interval by interval: a twin of that period, at most 31 days), ``week``
is a typical Monday-to-Sunday, ``day`` a typical day; ``auto`` is ``log`` for logs of up
to 31 days and ``week`` beyond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import numpy as np

from simulation.calllog import ABANDONED, OUTCOMES, SHORT_ABANDON, TRANSFERRED, CallLog
from simulation.laws import fit_handle_time, fit_patience, law_to_distribution
from simulation.scenario import parse_scenario
from simulation.staff_estimate import agent_pools, estimate_staff

__all__ = ["FitOptions", "FitResult", "fit_call_log"]

DAY = 86400.0
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_LOG_DAYS = 31


@dataclass(frozen=True, slots=True)
class FitOptions:
    interval_minutes: Literal[15, 30, 60] = 30
    span: Literal["auto", "log", "week", "day"] = "auto"
    wait_threshold: float = 5.0  # waits above this mean every eligible agent was busy
    service_level_seconds: float = 20.0
    replications: int = 10
    seed: int = 0


@dataclass(frozen=True, slots=True)
class FitResult:
    scenario: dict[str, Any]  # the scenario mapping (validated)
    report: dict[str, Any]  # fit_report.json
    charts: dict[str, Any]  # arrays the charts draw


def _day_grid(log: CallLog, width: float) -> tuple[int, int, int, np.ndarray]:
    """(first day, days, slots per day, calls per [day, slot])."""
    day = np.floor(log.arrival / DAY).astype(np.int64)
    d0 = int(day.min())
    n_days = int(day.max()) - d0 + 1
    spd = int(round(DAY / width))
    slot = np.minimum(((log.arrival - day * DAY) // width).astype(np.int64), spd - 1)
    counts = np.bincount((day - d0) * spd + slot, minlength=n_days * spd).reshape(n_days, spd)
    return d0, n_days, spd, counts


def _weekday(day: np.ndarray | int) -> np.ndarray:
    return (np.asarray(day) + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0


def _arrival_patterns(counts: np.ndarray, d0: int, width: float) -> dict[str, Any]:
    wd = _weekday(np.arange(counts.shape[0]) + d0)
    per_hour = 3600.0 / width
    out = {}
    for k, name in enumerate(WEEKDAYS):
        rows = counts[wd == k]
        if rows.shape[0] == 0:
            continue
        out[name] = {
            "days": int(rows.shape[0]),
            "calls_per_day_mean": float(rows.sum(axis=1).mean()),
            "calls_per_day_sd": float(rows.sum(axis=1).std(ddof=1)) if rows.shape[0] > 1 else None,
            "rate_per_hour_mean": [round(float(v), 3) for v in rows.mean(axis=0) * per_hour],
            "rate_per_hour_sd": (
                [round(float(v), 3) for v in rows.std(axis=0, ddof=1) * per_hour]
                if rows.shape[0] > 1
                else None
            ),
        }
    return out


def _calendar(span: str, n_days: int, d0: int, counts: np.ndarray) -> tuple[str, np.ndarray]:
    """The scenario's days as weights over the log's days: (span, [scenario day, log day])."""
    if span == "auto":
        span = "log" if n_days <= MAX_LOG_DAYS else "week"
    if span == "log":
        if n_days > MAX_LOG_DAYS:
            raise ValueError(f"the log covers {n_days} days; span log takes at most {MAX_LOG_DAYS}")
        return span, np.eye(n_days)
    wd = _weekday(np.arange(n_days) + d0)
    if span == "day":
        return span, np.full((1, n_days), 1.0 / n_days)
    w = np.zeros((7, n_days))
    for k in range(7):
        sel = wd == k
        if sel.any():
            w[k, sel] = 1.0 / sel.sum()
    return span, w


def _classes(log: CallLog) -> list[tuple[int, int]]:
    """(queue, priority) pairs present, most calls first."""
    key = log.queue.astype(np.int64) * 1_000_003 + (log.priority.astype(np.int64) + 500_000)
    uniq, n = np.unique(key, return_counts=True)
    order = np.argsort(-n, kind="stable")
    return [(int(u // 1_000_003), int(u % 1_000_003) - 500_000) for u in uniq[order]]


def _rates(log: CallLog, mask: np.ndarray) -> dict[str, Any]:
    queued = int(mask.sum())
    ans = log.is_answered & mask
    return {
        "calls": queued,
        "answered": int(ans.sum()),
        "abandon_rate": _share(
            ((log.outcome == ABANDONED) | (log.outcome == SHORT_ABANDON))[mask].sum(), queued
        ),
        "short_abandon_rate": _share((log.outcome == SHORT_ABANDON)[mask].sum(), queued),
        "transfer_rate": _share((log.outcome == TRANSFERRED)[mask].sum(), ans.sum()),
        "asa_seconds": float(log.wait[ans].mean()) if ans.any() else None,
    }


def _share(num: Any, den: Any) -> float | None:
    return float(num) / float(den) if den else None


def fit_call_log(log: CallLog, opts: FitOptions = FitOptions()) -> FitResult:
    """Fit everything the scenario needs; raise ``ValueError`` when the log cannot say."""
    rng = np.random.default_rng(opts.seed)
    width = opts.interval_minutes * 60.0
    d0, n_days, spd, counts = _day_grid(log, width)
    span, weights = _calendar(opts.span, n_days, d0, counts)
    rates = (weights @ counts) * (3600.0 / width)
    horizon_days = weights.shape[0]
    t0 = d0 * DAY

    # handle time and classes (queue x priority)
    ans = log.is_answered
    talk = log.talk
    overall = fit_handle_time(talk[ans], rng)
    classes = _classes(log)
    multi_prio = {q for q, _ in classes if len({p for qq, p in classes if qq == q}) > 1}
    intents, handle_report, class_report = [], {}, {}
    for q in sorted({q for q, _ in classes}):
        sel = ans & (log.queue == q)
        name = log.queue_names[q]
        handle_report[name] = fit_handle_time(talk[sel], rng) if sel.sum() >= 2 else None
    for q, p in classes:
        qname = log.queue_names[q]
        name = f"{qname}/p{p}" if q in multi_prio else qname
        mask = (log.queue == q) & (log.priority == p)
        hr = handle_report[qname]
        ivr = log.ivr[mask]
        intent: dict[str, Any] = {
            "name": name,
            "share": round(float(mask.mean()), 6),
            "skills": [s for s in qname.split(";") if s],
            "priority": p,
        }
        if q in multi_prio:
            intent["queue"] = name
        if hr is not None:
            intent["handle_time"] = law_to_distribution(hr["chosen"])
        if np.isfinite(ivr).any():
            intent["ivr_seconds"] = round(float(np.nanmean(ivr)), 2)
        intents.append(intent)
        class_report[name] = {**_rates(log, mask), "queue": qname, "priority": p}
        class_report[name]["patience_exponential"] = _class_patience(log, mask)

    abandoned = (log.outcome == ABANDONED) | (log.outcome == SHORT_ABANDON)
    patience = fit_patience(log.wait, abandoned, rng)

    # staff per pool, interval by interval, then on the scenario's calendar
    pools = agent_pools(log)
    agents, staff_report = [], {}
    for pool in pools:
        est = estimate_staff(log, pool, t0, width, n_days * spd, opts.wait_threshold)
        per_day = est["estimate"].reshape(n_days, spd)
        staff = np.rint(weights @ per_day).astype(int).ravel()
        skills = sorted({s for q in pool.queues for s in log.queue_names[q].split(";") if s})
        agents.append({"name": pool.name, "counts_per_interval": staff.tolist(), "skills": skills})
        staff_report[pool.name] = {
            "queues": [log.queue_names[q] for q in pool.queues],
            "named_agents": len(pool.agents),
            "intervals_measured_from_waits": int(est["measured"].sum()),
            "intervals": int(est["measured"].size),
            "estimate_per_interval": [round(float(v), 2) for v in est["estimate"]],
            "busy_mean_per_interval": [round(float(v), 2) for v in est["busy_mean"]],
            "seen_per_interval": [int(v) for v in est["seen"]],
        }
    wrap = log.wrap[ans]
    wrap_mean = float(np.nanmean(wrap)) if np.isfinite(wrap).any() else 0.0

    scenario: dict[str, Any] = {
        "arrivals": {
            "rates_per_hour": [round(float(v), 4) for v in rates.ravel()],
            "interval_minutes": opts.interval_minutes,
        },
        "duration_hours": 24 * horizon_days,
        "handle_time": law_to_distribution(overall["chosen"]),
        "intents": intents,
        "agents": agents,
        "wrap_up_seconds": round(wrap_mean, 2),
        "service_level_seconds": opts.service_level_seconds,
        "replications": opts.replications,
        "seed": opts.seed,
    }
    if patience["chosen"] is not None:
        scenario["patience"] = law_to_distribution(patience["chosen"])
    scenario = clean_json(scenario)
    parse_scenario(scenario, source="<fitted scenario>")  # fail here, not in the planner's run

    first_day = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(days=d0)
    report = {
        "log": log.summary(),
        "calendar": {
            "span": span,
            "first_day": first_day.date().isoformat(),
            "days_in_log": n_days,
            "scenario_days": horizon_days,
            "scenario_starts": (
                first_day.date().isoformat()
                if span == "log"
                else ("monday" if span == "week" else "any day")
            ),
            "interval_minutes": opts.interval_minutes,
        },
        "arrivals": {
            "rate_per_hour": _rate_ci(log.size, n_days * 24.0),
            "by_weekday": _arrival_patterns(counts, d0, width),
        },
        "handle_time": {"all": overall, "by_queue": handle_report},
        "wrap_up_seconds_mean": wrap_mean,
        "patience": patience,
        "classes": class_report,
        "overall": _rates(log, np.ones(log.size, dtype=bool)),
        "staffing": {
            "method": _STAFF_METHOD,
            "wait_threshold_seconds": opts.wait_threshold,
            "pools": staff_report,
        },
        "not_in_scenario": [
            "transfers: reported per class, not simulated (the scenario would model them as "
            "recognition errors with their own transfer talk)",
            "patience per class: reported (classes.*.patience_exponential); the scenario holds "
            "one patience law for all callers",
        ],
        "outcomes": list(OUTCOMES),
    }
    charts = {
        "rates": rates.ravel(),
        "width": width,
        "counts": counts,
        "talk": talk[ans],
        "handle": overall,
        "patience": patience,
        "staff": {a["name"]: a["counts_per_interval"] for a in agents},
        "wait": log.wait,
        "abandoned": abandoned,
    }
    return FitResult(scenario, report, charts)


_STAFF_METHOD = (
    "estimate, not a login record: while a call waited more than the threshold, every "
    "logged-in agent able to take it was busy, so the time-average of busy agents (talk + "
    "wrap-up) over those instants is the effective staff of the interval; intervals where "
    "calls waited less than 5% of the time take the agents seen working (named agents) or "
    "the peak of busy agents plus one (no agent names)"
)


def _rate_ci(calls: int, hours: float) -> dict[str, Any]:
    """Mean calls per hour over the log's days, exact Poisson 95% interval."""
    from scipy import stats

    lo = stats.chi2.ppf(0.025, 2 * calls) / 2 if calls else 0.0
    hi = stats.chi2.ppf(0.975, 2 * calls + 2) / 2
    return {"mean": calls / hours, "ci": [float(lo / hours), float(hi / hours)]}


def _class_patience(log: CallLog, mask: np.ndarray) -> dict[str, Any]:
    w = np.maximum(log.wait[mask], 0.0)
    d = int(((log.outcome == ABANDONED) | (log.outcome == SHORT_ABANDON))[mask].sum())
    exposure = float(w.sum())
    if d == 0 or exposure <= 0:
        return {"abandons": d, "mean_seconds": None}
    from scipy import stats

    lo = 2 * exposure / stats.chi2.ppf(0.975, 2 * d + 2)
    hi = 2 * exposure / stats.chi2.ppf(0.025, 2 * d)
    return {"abandons": d, "mean_seconds": exposure / d, "mean_ci": [float(lo), float(hi)]}


def clean_json(x: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): clean_json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [clean_json(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x
