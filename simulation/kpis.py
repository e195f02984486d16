"""KPIs as pure functions over flat records (design-document definitions).

* service_level = answered within T / offered to the queue (abandoned stay in the denominator)
* p_wait = offered to the queue that found no eligible agent free / offered to the queue
* asa_seconds = mean wait of answered calls
* abandon_rate = abandoned / offered to the queue
* aht_seconds = talk + after-call work over every leg / answered calls
* occupancy = agent busy time / agent logged-in time
* transfer_rate = transferred calls / answered
* containment = resolved in the IVR / offered
* unserved = queued calls neither answered nor abandoned when the run ended (no agent
  able to serve them was logged in any more)
* overtime_hours = logged-in time past scheduled logouts, finishing the call in hand

With several service-level thresholds, ``service_level`` is the first one's and each
has its own ``service_level_<T>s`` entry.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from simulation.records import AgentSpans, CallRecords

__all__ = [
    "KPI_DEFINITIONS",
    "breakdown_kpis",
    "call_kpis",
    "interval_kpis",
    "occupancy",
    "replication_kpis",
    "sl_key",
]

Thresholds = float | Sequence[float]

KPI_DEFINITIONS: dict[str, str] = {
    "offered": "calls that reached the system (IVR included)",
    "offered_to_queue": "offered calls not resolved in the IVR",
    "answered": "calls answered by an agent",
    "abandoned": "callers who hung up while waiting for an agent",
    "abandon_rate": "abandoned / offered_to_queue",
    "service_level": (
        "answered within the threshold / offered_to_queue (abandoned stay in the denominator)"
    ),
    "service_level_of_answered": "answered within the threshold / answered (other convention)",
    "asa_seconds": "mean wait of answered calls",
    "p_wait": "share of offered_to_queue calls that found no eligible agent free and had to wait",
    "aht_seconds": "talk + after-call work over every leg / answered calls",
    "occupancy": "agent busy time (talk + wrap-up) / agent logged-in time, within the window",
    "transfer_rate": "calls transferred at least once / answered",
    "containment": "calls resolved in the IVR / offered",
    "callback_rate": "callers who accepted a callback / offered_to_queue",
    "agent_hours": "logged-in agent hours within the window (overtime included)",
    "unserved": (
        "queued calls neither answered nor abandoned at the end (no agent able to serve them"
        " was logged in any more, and the callers never hang up)"
    ),
    "overtime_hours": "logged-in hours past a scheduled logout, finishing the call in hand",
    "overtime_share": "overtime_hours / agent_hours",
    "blocked": "calls turned away by a closed queue (an outage event); offered to the queue",
}


def sl_key(threshold: float) -> str:
    """The KPI name of one service-level threshold: ``service_level_20s``."""
    return f"service_level_{threshold:g}s"


def _thresholds(threshold: Thresholds) -> tuple[float, ...]:
    if isinstance(threshold, int | float):
        return (float(threshold),)
    return tuple(float(t) for t in threshold)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def call_kpis(
    calls: CallRecords, threshold: Thresholds, mask: np.ndarray | None = None
) -> dict[str, float]:
    """Call KPIs over the calls selected by ``mask`` (all when None)."""
    ts = _thresholds(threshold)
    if mask is None:
        mask = np.ones(calls.size, dtype=bool)
    contained = calls.contained[mask]
    queued = ~contained
    answered_at = calls.answered_at[mask]
    answered = ~np.isnan(answered_at)
    abandoned = ~np.isnan(calls.abandoned_at[mask])
    wait = answered_at - calls.queued_at[mask]
    ans_wait = wait[answered]
    n_offered = int(mask.sum())
    n_queue = int(queued.sum())
    n_ans = int(answered.sum())
    within = int((ans_wait <= ts[0] + 1e-9).sum())
    unserved = queued & ~answered & ~abandoned
    if calls.blocked is not None:
        blocked = calls.blocked[mask]
        unserved &= ~blocked
        n_blocked = float(blocked.sum())
    else:
        n_blocked = 0.0
    out = {
        "offered": float(n_offered),
        "offered_to_queue": float(n_queue),
        "answered": float(n_ans),
        "abandoned": float(abandoned.sum()),
        "abandon_rate": _ratio(float(abandoned.sum()), n_queue),
        "service_level": _ratio(within, n_queue),
        "service_level_of_answered": _ratio(within, n_ans),
        "asa_seconds": float(ans_wait.mean()) if n_ans else math.nan,
        "p_wait": _ratio(float((calls.waited[mask] & queued).sum()), n_queue),
        "aht_seconds": _ratio(float(calls.handled_seconds[mask][answered].sum()), n_ans),
        "transfer_rate": _ratio(float((calls.transferred[mask][answered] > 0).sum()), n_ans),
        "containment": _ratio(float(contained.sum()), n_offered),
        "callback_rate": _ratio(float((calls.callback[mask] & queued).sum()), n_queue),
        "unserved": float(unserved.sum()),
        "blocked": n_blocked,
    }
    if len(ts) > 1:
        for t in ts:
            out[sl_key(t)] = _ratio(int((ans_wait <= t + 1e-9).sum()), n_queue)
    return out


def _overlap(start: np.ndarray, end: np.ndarray, lo: float, hi: float) -> float:
    return float(np.clip(np.minimum(end, hi) - np.maximum(start, lo), 0.0, None).sum())


def occupancy(
    spans: AgentSpans, lo: float, hi: float, group: int | None = None
) -> tuple[float, float]:
    """(busy seconds, logged-in seconds) within [lo, hi), optionally for one agent group."""
    if group is None:
        b = _overlap(spans.busy_start, spans.busy_end, lo, hi)
        li = _overlap(spans.login_start, spans.login_end, lo, hi)
    else:
        gb = (
            spans.agent_group[spans.busy_agent] == group
            if spans.busy_agent.size
            else np.zeros(0, bool)
        )
        gl = (
            spans.agent_group[spans.login_agent] == group
            if spans.login_agent.size
            else np.zeros(0, bool)
        )
        b = _overlap(spans.busy_start[gb], spans.busy_end[gb], lo, hi)
        li = _overlap(spans.login_start[gl], spans.login_end[gl], lo, hi)
    return b, li


def replication_kpis(
    calls: CallRecords, spans: AgentSpans, threshold: Thresholds, lo: float, hi: float
) -> dict[str, float]:
    """Every KPI of one replication over calls arriving in [lo, hi) and agent time in it.

    Agent time counts within [lo, hi), plus overtime past ``hi`` (the queue's drain).
    """
    mask = (calls.arrival >= lo) & (calls.arrival < hi)
    out = call_kpis(calls, threshold, mask)
    busy, logged = occupancy(spans, lo, hi)
    out["occupancy"] = _ratio(busy, logged)
    out["agent_hours"] = logged / 3600.0
    over = _overlap(spans.overtime_start, spans.overtime_end, lo, hi)
    out["overtime_hours"] = over / 3600.0
    out["overtime_share"] = _ratio(over, logged)
    return out


def breakdown_kpis(
    calls: CallRecords, threshold: Thresholds, lo: float, hi: float, key: np.ndarray, n: int
) -> list[dict[str, float]]:
    """Call KPIs of each class ``0..n-1`` of ``key`` (one class per call), calls in [lo, hi)."""
    window = (calls.arrival >= lo) & (calls.arrival < hi)
    return [call_kpis(calls, threshold, window & (key == k)) for k in range(n)]


def interval_kpis(
    calls: CallRecords, spans: AgentSpans, threshold: Thresholds, width: float, horizon: float
) -> list[dict[str, float]]:
    """KPIs of each interval ``[k * width, (k + 1) * width)`` up to the horizon."""
    n = max(1, math.ceil(horizon / width - 1e-9))
    which = np.floor(calls.arrival / width).astype(np.int64)
    rows = []
    for k in range(n):
        lo, hi = k * width, min((k + 1) * width, horizon)
        row = call_kpis(calls, threshold, which == k)
        busy, logged = occupancy(spans, lo, hi)
        row["occupancy"] = _ratio(busy, logged)
        row["agents"] = logged / (hi - lo)
        row["interval_start_seconds"] = lo
        rows.append(row)
    return rows


def intent_interval_counts(
    calls: CallRecords, threshold: Thresholds, width: float, horizon: float, n_intents: int
) -> np.ndarray:
    """Counts per (intent, interval): [offered to queue, answered within T, abandoned]."""
    n = max(1, math.ceil(horizon / width - 1e-9))
    out = np.zeros((n_intents, n, 3))
    keep = (calls.arrival < horizon) & ~calls.contained
    k = np.floor(calls.arrival[keep] / width).astype(np.int64)
    it = calls.intent[keep].astype(np.int64)
    wait = (calls.answered_at - calls.queued_at)[keep]
    within = ~np.isnan(wait) & (wait <= _thresholds(threshold)[0] + 1e-9)
    aband = ~np.isnan(calls.abandoned_at[keep])
    np.add.at(out, (it, k, 0), 1.0)
    np.add.at(out, (it, k, 1), within.astype(float))
    np.add.at(out, (it, k, 2), aband.astype(float))
    return out
