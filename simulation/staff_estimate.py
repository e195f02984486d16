"""Effective staff per interval, inferred from a call log that has no login records.

The argument: while a call of queue ``q`` waits (longer than ``threshold`` seconds, past
the ring/offer time), every logged-in agent able to take ``q`` is busy, or the call would
have been answered. So over the instants some call of the pool's queues waits, the
number of the pool's agents busy (talk + wrap-up) *is* the number logged in. Per
interval the estimate is the time-average of busy agents over those instants, when
calls waited at least :data:`MIN_WAIT_SHARE` of the interval. Elsewhere no call waited
and the count is only bounded from below by the peak of busy agents: the estimate is
then the agents seen working in the interval (when the log names agents), or that
peak plus one (when it does not). Pools: agents grouped by the set of queues they
answer (a queue counts for an agent from 5% of its calls); without agent ids, one
pool serving every queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulation.calllog import CallLog

__all__ = ["MIN_WAIT_SHARE", "Pool", "agent_pools", "estimate_staff"]

MIN_WAIT_SHARE = 0.05
QUEUE_SHARE = 0.05
MAX_POOLS = 8


@dataclass(frozen=True, slots=True)
class Pool:
    """Agents alike in the queues they answer (``agents`` empty: the log names none)."""

    name: str
    queues: tuple[int, ...]
    agents: tuple[int, ...]


def agent_pools(log: CallLog) -> list[Pool]:
    """Group named agents by the queues they answer; one pool for all when none named."""
    answered = log.is_answered & (log.agent >= 0)
    if not answered.any():
        return [Pool("all_agents", tuple(range(len(log.queue_names))), ())]
    n_q = len(log.queue_names)
    pairs = np.bincount(
        log.agent[answered].astype(np.int64) * n_q + log.queue[answered],
        minlength=len(log.agent_names) * n_q,
    ).reshape(len(log.agent_names), n_q)
    totals = pairs.sum(axis=1, keepdims=True)
    serves = (pairs >= np.maximum(QUEUE_SHARE * totals, 1)) & (totals > 0)
    groups: dict[tuple[int, ...], list[int]] = {}
    for a in range(serves.shape[0]):
        key = tuple(int(q) for q in np.flatnonzero(serves[a]))
        if key:
            groups.setdefault(key, []).append(a)
    calls = {k: int(pairs[v].sum()) for k, v in groups.items()}
    ranked = sorted(groups, key=lambda k: -calls[k])
    kept = ranked[:MAX_POOLS]
    for key in ranked[MAX_POOLS:]:  # fold rare skill sets into the closest kept one
        target = max(kept, key=lambda k: (len(set(k) & set(key)), calls[k]))
        groups[target] = groups[target] + groups.pop(key)
    pools = []
    for key in kept:
        label = "+".join(log.queue_names[q] for q in key)
        pools.append(Pool(f"agents_{label}"[:60], key, tuple(groups[key])))
    return pools


def _levels(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.concatenate([starts, ends])
    delta = np.concatenate([np.ones(starts.size), -np.ones(ends.size)])
    return t, delta


def estimate_staff(
    log: CallLog, pool: Pool, t0: float, width: float, n_intervals: int, threshold: float = 5.0
) -> dict[str, np.ndarray]:
    """Per interval from ``t0``: estimate, agents busy (mean), seen, and the waiting share."""
    in_pool = np.isin(log.queue, np.asarray(pool.queues, dtype=np.int32))
    ans = log.is_answered
    if pool.agents:
        mine = ans & np.isin(log.agent, np.asarray(pool.agents, dtype=np.int32))
    else:
        mine = ans & in_pool
    wrap = np.nan_to_num(log.wrap[mine], nan=0.0)
    b_s, b_e = log.answered[mine] - t0, log.ended[mine] + wrap - t0
    wait = log.wait
    waits = in_pool & (wait > threshold)
    q_s, q_e = log.queued[waits] + threshold - t0, log.queued[waits] + wait[waits] - t0
    tb, db = _levels(b_s, b_e)
    tq, dq = _levels(q_s, q_e)
    bounds = np.arange(n_intervals + 1, dtype=float) * width
    t = np.concatenate([tb, tq, bounds])
    d_busy = np.concatenate([db, np.zeros(tq.size + bounds.size)])
    d_wait = np.concatenate([np.zeros(tb.size), dq, np.zeros(bounds.size)])
    order = np.argsort(t, kind="stable")
    t, d_busy, d_wait = t[order], d_busy[order], d_wait[order]
    busy = np.cumsum(d_busy)
    waiting = np.cumsum(d_wait) > 0.5
    dt = np.diff(t, append=t[-1])
    slot = np.floor(t / width).astype(np.int64)
    inside = (slot >= 0) & (slot < n_intervals) & (dt > 0)
    slot, dt, busy, waiting = slot[inside], dt[inside], busy[inside], waiting[inside]
    busy_time = np.bincount(slot, weights=busy * dt, minlength=n_intervals)
    wait_time = np.bincount(slot, weights=dt * waiting, minlength=n_intervals)
    busy_waiting = np.bincount(slot, weights=busy * dt * waiting, minlength=n_intervals)
    peak = np.zeros(n_intervals)
    np.maximum.at(peak, slot, busy)
    seen = np.zeros(n_intervals)
    if pool.agents:
        first = np.clip(np.floor(b_s / width).astype(np.int64), 0, n_intervals - 1)
        last = np.clip(
            np.floor(np.maximum(b_e - 1e-9, b_s) / width).astype(np.int64), 0, n_intervals - 1
        )
        reps = last - first + 1
        slots = np.repeat(first, reps) + (
            np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        )
        agents = np.repeat(log.agent[mine].astype(np.int64), reps)
        uniq = np.unique(slots * (len(log.agent_names) + 1) + agents)
        seen = np.bincount(uniq // (len(log.agent_names) + 1), minlength=n_intervals)[
            :n_intervals
        ].astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        during_wait = busy_waiting / wait_time
    measured = wait_time >= MIN_WAIT_SHARE * width
    fallback = seen if pool.agents else np.where(peak > 0, peak + 1, 0.0)
    fallback = np.maximum(fallback, peak)
    estimate = np.where(measured, during_wait, fallback)
    return {
        "estimate": estimate,
        "busy_mean": busy_time / width,
        "peak_busy": peak,
        "seen": seen,
        "waiting_share": wait_time / width,
        "measured": measured,
    }
