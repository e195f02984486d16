"""Confidence intervals over independent replications (Student t)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

import numpy as np
from scipy.stats import t as student_t

__all__ = ["Estimate", "mean_ci"]


@lru_cache(maxsize=256)
def _t_quantile(level: float, dof: int) -> float:
    return float(student_t.ppf(0.5 + level / 2.0, dof))


def mean_ci(values: Iterable[float], level: float = 0.95) -> dict[str, float]:
    """``{mean, ci_low, ci_high, n}`` of the finite values (nan when there are none)."""
    x = np.asarray([v for v in values if math.isfinite(v)], dtype=float)
    if x.size == 0:
        return {"mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, "n": 0}
    m = float(x.mean())
    if x.size < 2:
        return {"mean": m, "ci_low": math.nan, "ci_high": math.nan, "n": int(x.size)}
    half = _t_quantile(level, int(x.size) - 1) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return {"mean": m, "ci_low": m - half, "ci_high": m + half, "n": int(x.size)}


Estimate = dict[str, float]
