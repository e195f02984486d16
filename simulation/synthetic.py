"""A realistic synthetic call log, written by a queue model of its own (not the simulator).

It has what real logs have and simple simulators miss: an intraday profile with two
peaks, weekday factors, a trend, holidays and day-to-day noise; patience with a
falling hazard (Weibull shape < 1) and short abandons; priority customers served
first; a day's staffing that follows the load (square-root staffing on the forecast,
rounded, with absences) and agents who finish the call in hand at logout; IVR time,
wrap-up, transfers and named agents. ``ivr fit`` on it, then ``ivr simulate``, must
reproduce its abandonment and ASA (tests/test_fidelity.py).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SyntheticCentre", "generate_calls", "holiday_dates"]


@dataclass(frozen=True, slots=True)
class SyntheticCentre:
    """The centre the log comes from; times in seconds, rates in calls per hour."""

    first_day: int = 20_500  # days since 1970-01-01 on the centre's clock (a Monday)
    days: int = 28
    peak_rate: float = 240.0
    open_hour: float = 8.0
    close_hour: float = 20.0
    weekday_factor: tuple[float, ...] = (1.15, 1.0, 0.95, 0.95, 1.05, 0.55, 0.0)
    trend_per_week: float = 0.01
    holidays: tuple[int, ...] = (10, 45)  # day offsets with a tenth of the traffic
    day_noise_cv: float = 0.08
    vip_share: float = 0.15  # priority 1, served first
    business_share: float = 0.3
    handle_mean: tuple[float, float] = (200.0, 320.0)  # retail (lognormal), business (gamma)
    handle_cv: tuple[float, float] = (0.9, 0.7)
    patience_mean: float = 240.0
    patience_shape: float = 0.6  # Weibull: hazard falls with time
    short_abandon_seconds: float = 5.0
    wrap_seconds: float = 15.0
    transfer_share: float = 0.03
    staffing_beta: float = 0.6  # agents = load + beta * sqrt(load) - absences
    interval_minutes: int = 30
    seed: int = 1


def holiday_dates(c: SyntheticCentre) -> list[str]:
    """The centre's holidays within its days, as YYYY-MM-DD."""
    from datetime import date, timedelta

    first = date(1970, 1, 1) + timedelta(days=c.first_day)
    return [(first + timedelta(days=d)).isoformat() for d in c.holidays if d < c.days]


def _profile(h: np.ndarray, c: SyntheticCentre) -> np.ndarray:
    """Relative intraday arrival rate (two peaks: late morning, early afternoon)."""
    shape = np.exp(-((h - 10.5) ** 2) / 3.0) + 0.8 * np.exp(-((h - 14.5) ** 2) / 4.0) + 0.15
    return np.where((h >= c.open_hour) & (h < c.close_hour), shape, 0.0)


def _rates(c: SyntheticCentre, rng: np.random.Generator) -> np.ndarray:
    """Calls per hour for every interval of every day: (days, intervals per day)."""
    width = c.interval_minutes / 60.0
    h = (np.arange(int(24 / width)) + 0.5) * width
    prof = _profile(h, c)
    prof = prof / prof.max()
    out = np.empty((c.days, h.size))
    for d in range(c.days):
        wd = (c.first_day + d + 3) % 7
        f = c.weekday_factor[wd] * (1 + c.trend_per_week * d / 7)
        if d in c.holidays:
            f *= 0.1
        noise = rng.gamma(1 / c.day_noise_cv**2, c.day_noise_cv**2)
        out[d] = c.peak_rate * f * noise * prof
    return out


def generate_calls(c: SyntheticCentre = SyntheticCentre()) -> Iterator[dict[str, Any]]:
    """Yield call-log rows (canonical columns, times as centre-clock seconds), by arrival."""
    rng = np.random.default_rng(c.seed)
    rates = _rates(c, rng)
    width = c.interval_minutes * 60.0
    n_int = rates.shape[1]
    t0 = c.first_day * 86400.0
    mean_handle = (1 - c.business_share) * c.handle_mean[0] + c.business_share * c.handle_mean[1]
    # staffing follows the day's load (square-root staffing), rounded, minus absences
    staff = np.zeros_like(rates, dtype=int)
    load = rates * (mean_handle + c.wrap_seconds) / 3600.0
    staff[load > 0] = np.ceil(load + c.staffing_beta * np.sqrt(load))[load > 0].astype(int)
    absent = rng.binomial(staff, 0.06)
    staff = np.maximum(staff - absent, np.where(load > 0, 1, 0))
    arrivals = []
    for d in range(c.days):
        for j in range(n_int):
            lam = rates[d, j] * width / 3600.0
            k = rng.poisson(lam)
            if k:
                arrivals.extend(t0 + d * 86400.0 + j * width + np.sort(rng.random(k)) * width)
    arr = np.asarray(arrivals)
    n = arr.size
    business = rng.random(n) < c.business_share
    vip = rng.random(n) < c.vip_share
    ivr = rng.uniform(20, 60, n)
    s2 = [math.log1p(cv * cv) for cv in c.handle_cv]
    talk = np.where(
        business,
        rng.gamma(1 / c.handle_cv[1] ** 2, c.handle_mean[1] * c.handle_cv[1] ** 2, n),
        rng.lognormal(math.log(c.handle_mean[0]) - s2[0] / 2, math.sqrt(s2[0]), n),
    )
    scale = c.patience_mean / math.gamma(1 + 1 / c.patience_shape)
    patience = scale * rng.weibull(c.patience_shape, n)
    transfer = rng.random(n) < c.transfer_share
    yield from _run_queue(c, arr, ivr, business, vip, talk, patience, transfer, staff, t0)


def _run_queue(c, arr, ivr, business, vip, talk, patience, transfer, staff, t0):  # type: ignore[no-untyped-def]
    """Priority-then-FIFO queue, longest-idle agent; logouts finish the call in hand."""
    width = c.interval_minutes * 60.0
    queued = arr + ivr
    order = np.argsort(queued, kind="stable")
    flat = staff.ravel()
    events: list[tuple[float, int, int]] = []  # (time, kind, x): 0 end, 1 staff, 2 abandon, 3 join
    for j, _ in enumerate(flat):
        heapq.heappush(events, (t0 + j * width, 1, j))
    for i in order.tolist():
        heapq.heappush(events, (float(queued[i]), 3, i))
    idle: list[tuple[float, int]] = []  # (idle since, agent)
    logged: set[int] = set()
    leaving: set[int] = set()
    busy: dict[int, int] = {}
    waiting: list[tuple[int, float, int]] = []  # (-priority, queued, call)
    in_queue: set[int] = set()
    answered = np.full(arr.size, np.nan)
    ended = np.full(arr.size, np.nan)
    agent_of = np.full(arr.size, -1)
    target = 0

    def start(a: int, i: int, now: float) -> None:
        in_queue.discard(i)
        busy[a] = i
        answered[i] = now
        heapq.heappush(events, (now + talk[i] + c.wrap_seconds, 0, a))
        agent_of[i] = a

    def next_call() -> int | None:
        while waiting:
            _, _, i = heapq.heappop(waiting)
            if i in in_queue:
                return i
        return None

    while events:
        now, kind, x = heapq.heappop(events)
        if kind == 3:
            i = x
            while idle and (idle[0][1] not in logged or idle[0][1] in busy):
                heapq.heappop(idle)
            if idle:
                _, a = heapq.heappop(idle)
                start(a, i, now)
            else:
                in_queue.add(i)
                heapq.heappush(waiting, (-int(vip[i]), now, i))
                heapq.heappush(events, (now + patience[i], 2, i))
        elif kind == 2:
            if x in in_queue:
                in_queue.discard(x)
                ended[x] = now
        elif kind == 0:
            a = x
            i = busy.pop(a)
            ended[i] = answered[i] + talk[i]
            if a in leaving:
                leaving.discard(a)
                logged.discard(a)
                continue
            nxt = next_call()
            if nxt is not None:
                start(a, nxt, now)
            else:
                heapq.heappush(idle, (now, a))
        else:  # staffing change at an interval boundary
            target = int(flat[x])
            on = sorted(logged - leaving)
            if len(on) < target:
                for a in range(target + len(leaving) + 5):
                    if len(on) >= target:
                        break
                    if a not in logged:
                        logged.add(a)
                        on.append(a)
                        nxt = next_call()
                        if nxt is not None:
                            start(a, nxt, now)
                        else:
                            heapq.heappush(idle, (now, a))
                    elif a in leaving:
                        leaving.discard(a)
                        on.append(a)
            else:
                for a in on[target:][::-1]:
                    if a in busy:
                        leaving.add(a)
                    else:
                        logged.discard(a)
    for i in range(arr.size):
        row: dict[str, Any] = {
            "arrival_time": float(arr[i]),
            "queue": "business" if business[i] else "retail",
            "ivr_seconds": float(ivr[i]),
            "queued_at": float(queued[i]),
            "priority": int(vip[i]),
        }
        if not math.isnan(answered[i]):
            row.update(
                answered_at=float(answered[i]),
                ended_at=float(ended[i]),
                wrap_up_seconds=c.wrap_seconds,
                agent_id=f"ag{agent_of[i]:03d}",
                outcome="transferred" if transfer[i] else "answered",
            )
        elif not math.isnan(ended[i]):
            short = ended[i] - queued[i] <= c.short_abandon_seconds
            row.update(ended_at=float(ended[i]), outcome="short_abandon" if short else "abandoned")
        else:
            continue
        yield row
