"""Erlang B, Erlang C (M/M/c) and Erlang A (M/M/c+M), stable for hundreds of agents.

No factorials are formed: Erlang B comes from its recursion, Erlang A's stationary
law is built in log space and normalised with a log-sum-exp. Units: arrival rate in
calls per hour, times in seconds. KPI conventions follow the design document:

* ``service_level`` = P(answered and waited <= T), abandoned calls in the denominator;
* ``p_wait`` = P(an arriving call finds no agent free);
* ``asa_seconds`` = mean wait of answered calls;
* ``abandon_rate`` = abandoned / offered;
* ``occupancy`` = busy agent time / agent time.

Erlang A's waiting-time law uses one closed form: a call that finds ``k`` callers
ahead is answered with probability ``s_k = nmu / (nmu + (k+1) theta)`` and, given
that, its wait is, after exponential tilting, a sum of exponentials with rates
``nmu + i theta`` (i = 1..k+1), whose CDF is the regularised incomplete beta
``I_{1-exp(-theta t)}(k+1, nmu/theta + 1)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.special import betainc, logsumexp

from simulation.errors import AnalyticError

__all__ = [
    "QueueMetrics",
    "agents_for_targets",
    "erlang_a_metrics",
    "erlang_b",
    "erlang_c",
    "erlang_c_metrics",
    "queue_metrics",
]


@dataclass(frozen=True, slots=True)
class QueueMetrics:
    """Steady-state KPIs of one single-skill queue."""

    agents: int
    offered_load_erlangs: float
    p_wait: float
    service_level: float
    asa_seconds: float
    abandon_rate: float
    occupancy: float
    mean_queue: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _check(agents: int, calls_per_hour: float, aht_seconds: float) -> None:
    if int(agents) != agents or agents < 1:
        raise AnalyticError(f"agents must be a positive integer, got {agents!r}")
    if not calls_per_hour >= 0 or not math.isfinite(calls_per_hour):
        raise AnalyticError(f"calls_per_hour must be >= 0, got {calls_per_hour!r}")
    if not aht_seconds > 0 or not math.isfinite(aht_seconds):
        raise AnalyticError(f"aht_seconds must be > 0, got {aht_seconds!r}")


def erlang_b(agents: int, load: float) -> float:
    """Blocking probability of M/M/c/c with ``load`` Erlangs (recursion, no factorials)."""
    if agents < 0 or load < 0:
        raise AnalyticError("agents and load must be >= 0")
    b = 1.0
    for k in range(1, int(agents) + 1):
        b = load * b / (k + load * b)
    return b


def erlang_c(agents: int, load: float) -> float:
    """P(wait) of M/M/c with ``load`` Erlangs; 1.0 when ``load >= agents``."""
    if agents < 1:
        raise AnalyticError("agents must be >= 1")
    if load >= agents:
        return 1.0
    b = erlang_b(agents, load)
    return agents * b / (agents - load * (1.0 - b))


def erlang_c_metrics(
    agents: int, calls_per_hour: float, aht_seconds: float, service_level_seconds: float
) -> QueueMetrics:
    """KPIs of M/M/c (callers never hang up)."""
    _check(agents, calls_per_hour, aht_seconds)
    lam = calls_per_hour / 3600.0
    mu = 1.0 / aht_seconds
    load = lam / mu
    if load >= agents * (1.0 - 1e-12):  # unstable (with a rounding margin)
        return QueueMetrics(agents, load, 1.0, 0.0, math.inf, 0.0, 1.0, math.inf)
    c = erlang_c(agents, load)
    drain = agents * mu - lam
    return QueueMetrics(
        agents=agents,
        offered_load_erlangs=load,
        p_wait=c,
        service_level=1.0 - c * math.exp(-drain * service_level_seconds),
        asa_seconds=c / drain,
        abandon_rate=0.0,
        occupancy=load / agents,
        mean_queue=c * lam / drain,
    )


def _erlang_a_state_law(n: int, lam: float, mu: float, theta: float) -> tuple[float, np.ndarray]:
    """Return (P(N < n), [P(N = n + k) for k = 0..K]) for M/M/n+M, tail truncated at 1e-18."""
    load = lam / mu
    j = np.arange(n + 1, dtype=float)
    log_head = (
        j * math.log(load) - np.array([math.lgamma(x + 1.0) for x in j]) if load > 0 else None
    )
    if log_head is None:  # no traffic: everybody idle
        return 1.0, np.zeros(1)
    k_max = 256
    while True:
        i = np.arange(1, k_max + 1, dtype=float)
        log_tail = log_head[-1] + np.cumsum(np.log(lam) - np.log(n * mu + i * theta))
        peak = max(log_head.max(), log_tail.max())
        if log_tail[-1] < peak - 45.0 and log_tail[-1] < log_tail[-2]:
            break
        k_max *= 2
        if k_max > 1 << 24:
            raise AnalyticError("Erlang A tail does not converge (patience too long for this load)")
    log_all = np.concatenate([log_head, log_tail])
    log_norm = logsumexp(log_all)
    probs = np.exp(log_all - log_norm)
    return float(probs[:n].sum()), probs[n:]


def erlang_a_metrics(
    agents: int,
    calls_per_hour: float,
    aht_seconds: float,
    patience_seconds: float,
    service_level_seconds: float,
) -> QueueMetrics:
    """KPIs of M/M/c+M (exponential patience with mean ``patience_seconds``)."""
    _check(agents, calls_per_hour, aht_seconds)
    if not patience_seconds > 0:
        raise AnalyticError(f"patience_seconds must be > 0, got {patience_seconds!r}")
    if math.isinf(patience_seconds):
        return erlang_c_metrics(agents, calls_per_hour, aht_seconds, service_level_seconds)
    n = int(agents)
    lam = calls_per_hour / 3600.0
    mu = 1.0 / aht_seconds
    theta = 1.0 / patience_seconds
    load = lam / mu
    if lam == 0:
        return QueueMetrics(n, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0)
    p_free, p_busy = _erlang_a_state_law(n, lam, mu, theta)
    k = np.arange(p_busy.size, dtype=float)
    nmu = n * mu
    served = nmu / (nmu + (k + 1.0) * theta)
    # E[W; served | k] = s_k * sum_{i=1}^{k+1} 1 / (nmu + i theta)
    wait_if_served = served * np.cumsum(1.0 / (nmu + (k + 1.0) * theta))
    u = -math.expm1(-theta * service_level_seconds)
    within = served * betainc(k + 1.0, nmu / theta + 1.0, u) if u > 0 else np.zeros_like(k)
    p_served = p_free + float(np.dot(p_busy, served))
    abandon = 1.0 - p_served
    asa = float(np.dot(p_busy, wait_if_served)) / p_served if p_served > 0 else math.inf
    return QueueMetrics(
        agents=n,
        offered_load_erlangs=load,
        p_wait=float(p_busy.sum()),
        service_level=p_free + float(np.dot(p_busy, within)),
        asa_seconds=asa,
        abandon_rate=max(abandon, 0.0),
        occupancy=min(load * p_served / n, 1.0),
        mean_queue=float(np.dot(p_busy, k)),
    )


def queue_metrics(
    agents: int,
    calls_per_hour: float,
    aht_seconds: float,
    service_level_seconds: float,
    patience_seconds: float | None = None,
) -> QueueMetrics:
    """Erlang A when a mean patience is given, Erlang C otherwise."""
    if patience_seconds is None:
        return erlang_c_metrics(agents, calls_per_hour, aht_seconds, service_level_seconds)
    return erlang_a_metrics(
        agents, calls_per_hour, aht_seconds, patience_seconds, service_level_seconds
    )


def agents_for_targets(
    calls_per_hour: float,
    aht_seconds: float,
    service_level: float,
    within_seconds: float,
    *,
    max_abandon: float | None = None,
    patience_seconds: float | None = None,
    max_occupancy: float | None = None,
) -> int:
    """Fewest agents whose steady state meets every target given (0 when there is no traffic).

    Every KPI used is monotone in the number of agents, so a doubling then bisection
    search over ``n`` is exact.
    """
    if not 0.0 <= service_level < 1.0:
        raise AnalyticError(f"service_level must be in [0, 1), got {service_level!r}")
    if calls_per_hour <= 0:
        return 0

    def ok(n: int) -> bool:
        m = queue_metrics(n, calls_per_hour, aht_seconds, within_seconds, patience_seconds)
        if m.service_level < service_level:
            return False
        if max_abandon is not None and m.abandon_rate > max_abandon:
            return False
        return max_occupancy is None or m.occupancy <= max_occupancy

    load = calls_per_hour * aht_seconds / 3600.0
    low = 0 if patience_seconds is not None else max(0, math.floor(load))  # ok(low) is False
    high = max(low + 1, math.ceil(load) + 1)
    while not ok(high):
        low, high = high, high * 2
        if high > 10_000_000:
            raise AnalyticError("targets cannot be met with any reasonable number of agents")
    while high - low > 1:
        mid = (low + high) // 2
        if ok(mid):
            high = mid
        else:
            low = mid
    return high
