"""Drawing durations from a scenario's :class:`~simulation.scenario.Distribution`."""

from __future__ import annotations

import math

import numpy as np

from simulation.scenario import Distribution

__all__ = ["sample", "sample_above"]


def _weibull_scale(dist: Distribution) -> float:
    k = float(dist.shape)  # type: ignore[arg-type]
    return float(dist.mean_seconds) / math.gamma(1.0 + 1.0 / k)  # type: ignore[arg-type]


def _survival_draw(dist: Distribution, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Inverse of a step survival curve at ``u`` (share still waiting), with its tail."""
    t = np.asarray(dist.times_seconds, dtype=float)
    s = np.asarray(dist.survival, dtype=float)
    idx = np.searchsorted(-s, -u, side="right")  # first i with s[i] < u
    out = t[np.minimum(idx, t.size - 1)]
    beyond = idx >= t.size
    if beyond.any():
        tail = dist.tail_mean_seconds
        extra = rng.exponential(tail, int(beyond.sum())) if tail else math.inf
        out = out.copy()
        out[beyond] = t[-1] + extra
    return out


def sample(dist: Distribution | None, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` independent draws in seconds; ``None`` means "never" (all ``inf``)."""
    if dist is None:
        return np.full(size, math.inf)
    kind = dist.distribution
    if kind == "empirical":
        assert dist.values_seconds is not None
        return rng.choice(np.asarray(dist.values_seconds, dtype=float), size=size)
    if kind == "survival":
        return _survival_draw(dist, rng.random(size), rng)
    mean = float(dist.mean_seconds)  # type: ignore[arg-type]
    if kind == "exponential":
        return rng.exponential(mean, size)
    if kind == "deterministic":
        return np.full(size, mean)
    if kind == "weibull":
        return _weibull_scale(dist) * rng.weibull(float(dist.shape), size)  # type: ignore[arg-type]
    cv = float(dist.cv)  # type: ignore[arg-type]
    if kind == "lognormal":
        sigma2 = math.log1p(cv * cv)
        return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), size)
    if kind == "gamma":
        shape = 1.0 / (cv * cv)
        return rng.gamma(shape, mean / shape, size)
    raise AssertionError(kind)


def _frozen(dist: Distribution):  # type: ignore[no-untyped-def]
    from scipy import stats

    mean = float(dist.mean_seconds)  # type: ignore[arg-type]
    if dist.distribution == "weibull":
        return stats.weibull_min(float(dist.shape), scale=_weibull_scale(dist))  # type: ignore[arg-type]
    cv = float(dist.cv)  # type: ignore[arg-type]
    if dist.distribution == "lognormal":
        sigma2 = math.log1p(cv * cv)
        return stats.lognorm(math.sqrt(sigma2), scale=math.exp(math.log(mean) - sigma2 / 2.0))
    shape = 1.0 / (cv * cv)
    return stats.gamma(shape, scale=mean / shape)


def sample_above(
    dist: Distribution | None, rng: np.random.Generator, lower: np.ndarray
) -> np.ndarray:
    """Draws conditioned on exceeding ``lower`` (censored data: "waited this long, answered").

    Where the law has no mass above a bound, the bound itself is returned.
    """
    lower = np.asarray(lower, dtype=float)
    n = lower.size
    if dist is None:
        return np.full(n, math.inf)
    kind = dist.distribution
    if kind == "exponential":
        return lower + rng.exponential(float(dist.mean_seconds), n)  # type: ignore[arg-type]
    if kind == "deterministic":
        return np.maximum(lower, float(dist.mean_seconds))  # type: ignore[arg-type]
    if kind == "empirical":
        v = np.sort(np.asarray(dist.values_seconds, dtype=float))
        first = np.searchsorted(v, lower, side="right")
        count = v.size - first
        pick = first + np.floor(rng.random(n) * count).astype(np.int64)
        return np.where(count > 0, v[np.minimum(pick, v.size - 1)], lower)
    if kind == "survival":
        t = np.asarray(dist.times_seconds, dtype=float)
        s = np.asarray(dist.survival, dtype=float)
        j = np.searchsorted(t, lower, side="right") - 1  # last time at or below the bound
        s_at = np.where(j >= 0, s[np.maximum(j, 0)], 1.0)
        out = _survival_draw(dist, rng.random(n) * s_at, rng)
        tail = dist.tail_mean_seconds
        past = lower >= t[-1]
        if past.any():  # memoryless tail
            out[past] = lower[past] + (rng.exponential(tail, int(past.sum())) if tail else math.inf)
        return np.where(s_at > 0, np.maximum(out, lower), lower)
    law = _frozen(dist)
    tail = law.sf(lower)
    x = law.isf(rng.random(n) * tail)
    return np.where((tail > 0) & np.isfinite(x), np.maximum(x, lower), lower)
