"""Drawing durations from a scenario's :class:`~simulation.scenario.Distribution`."""

from __future__ import annotations

import math

import numpy as np

from simulation.scenario import Distribution

__all__ = ["sample"]


def sample(dist: Distribution | None, rng: np.random.Generator, size: int) -> np.ndarray:
    """``size`` independent draws in seconds; ``None`` means "never" (all ``inf``)."""
    if dist is None:
        return np.full(size, math.inf)
    kind = dist.distribution
    if kind == "empirical":
        assert dist.values_seconds is not None
        return rng.choice(np.asarray(dist.values_seconds, dtype=float), size=size)
    mean = float(dist.mean_seconds)  # type: ignore[arg-type]
    if kind == "exponential":
        return rng.exponential(mean, size)
    if kind == "deterministic":
        return np.full(size, mean)
    cv = float(dist.cv)  # type: ignore[arg-type]
    if kind == "lognormal":
        sigma2 = math.log1p(cv * cv)
        return rng.lognormal(math.log(mean) - sigma2 / 2.0, math.sqrt(sigma2), size)
    if kind == "gamma":
        shape = 1.0 / (cv * cv)
        return rng.gamma(shape, mean / shape, size)
    raise AssertionError(kind)
