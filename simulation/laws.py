"""Fitting duration laws to data: handle times (complete) and patience (right-censored).

Candidates are the laws a scenario can hold (:class:`~simulation.scenario.Distribution`):
exponential, lognormal and gamma by maximum likelihood, chosen by AIC; the empirical
law replaces them when the best one fails Kolmogorov-Smirnov at 5% *and* is further
than :data:`KS_MATERIAL` from the data (with many calls every law "fails" KS by a
hair, which should not throw a good law away).

Patience is censored: a caller answered after waiting ``w`` only tells that their
patience exceeded ``w``. Every estimate here uses abandoners (events) and answered
callers (censored) together: the exponential hazard ``abandons / total time waited``
with an exact chi-square interval, Kaplan-Meier survival with Greenwood intervals,
and censored maximum likelihood for lognormal and gamma.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, stats

__all__ = [
    "KS_MATERIAL",
    "fit_handle_time",
    "fit_patience",
    "kaplan_meier",
    "law_to_distribution",
]

KS_MATERIAL = 0.03
MAX_FIT_SAMPLE = 200_000
MAX_PATIENCE_SAMPLE = 50_000  # censored MLE iterates: a sample keeps it to seconds
EMPIRICAL_POINTS = 400
MIN_ABANDONS_FOR_SHAPE = 30


def _subsample(x: np.ndarray, rng: np.random.Generator, n: int = MAX_FIT_SAMPLE) -> np.ndarray:
    return x if x.size <= n else rng.choice(x, size=n, replace=False)


def _frozen(kind: str, mean: float, cv: float):  # type: ignore[no-untyped-def]
    if kind == "exponential":
        return stats.expon(scale=mean)
    if kind == "lognormal":
        s2 = math.log1p(cv * cv)
        return stats.lognorm(s=math.sqrt(s2), scale=mean * math.exp(-s2 / 2))
    shape = 1.0 / (cv * cv)
    return stats.gamma(a=shape, scale=mean / shape)


def law_to_distribution(law: dict[str, Any]) -> dict[str, Any]:
    """The scenario ``Distribution`` mapping of a fitted law."""
    kind = law["distribution"]
    if kind == "empirical":
        return {"distribution": "empirical", "values_seconds": law["values_seconds"]}
    out: dict[str, Any] = {"distribution": kind, "mean_seconds": round(law["mean_seconds"], 3)}
    if kind in ("lognormal", "gamma"):
        out["cv"] = round(law["cv"], 4)
    return out


def fit_handle_time(x: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """Fit complete durations; report every candidate and the choice with its reason."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size < 2:
        raise ValueError("fewer than 2 durations to fit")
    s = np.maximum(_subsample(x, rng), 0.5)  # a 0 s talk is a 0.5 s one for the densities
    mean = float(s.mean())
    log_s = np.log(s)
    cands: dict[str, tuple[float, float]] = {"exponential": (mean, 1.0)}
    mu, sd = float(log_s.mean()), float(log_s.std())
    if sd > 0:
        cands["lognormal"] = (math.exp(mu + sd * sd / 2), math.sqrt(math.expm1(sd * sd)))
        a, _, scale = stats.gamma.fit(s, floc=0)
        cands["gamma"] = (a * scale, 1 / math.sqrt(a))
    rows = []
    for kind, (m, cv) in cands.items():
        law = _frozen(kind, m, cv)
        ll = float(law.logpdf(s).sum())
        k = 1 if kind == "exponential" else 2
        ks = stats.kstest(s, law.cdf)
        rows.append(
            {
                "distribution": kind,
                "mean_seconds": m,
                "cv": cv,
                "log_likelihood": ll,
                "aic": 2 * k - 2 * ll,
                "ks_statistic": float(ks.statistic),
                "ks_pvalue": float(ks.pvalue),
            }
        )
    best = min(rows, key=lambda r: r["aic"])
    n = int(x.size)
    sem = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    out: dict[str, Any] = {
        "n": n,
        "mean_seconds": float(x.mean()),
        "mean_ci": [float(x.mean() - 1.96 * sem), float(x.mean() + 1.96 * sem)],
        "cv": float(x.std() / x.mean()) if x.mean() > 0 else math.nan,
        "candidates": rows,
        "criterion": (
            "lowest AIC among exponential, lognormal, gamma (maximum likelihood); the "
            f"empirical law instead when that one fails KS at 5% and its KS distance > "
            f"{KS_MATERIAL}"
        ),
    }
    if best["ks_pvalue"] < 0.05 and best["ks_statistic"] > KS_MATERIAL:
        probs = (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS
        values = np.quantile(x, probs)
        out["chosen"] = {
            "distribution": "empirical",
            "values_seconds": [round(float(v), 2) for v in values],
            "mean_seconds": float(values.mean()),
            "reason": f"{best['distribution']} fails KS (D={best['ks_statistic']:.3f})",
        }
    else:
        out["chosen"] = {**best, "reason": "lowest AIC, KS distance acceptable"}
    return out


def _censored_nll(params: np.ndarray, kind: str, t_ev: np.ndarray, t_cen: np.ndarray) -> float:
    m, cv = math.exp(params[0]), math.exp(params[1])
    if not (1e-3 < cv < 50 and m < 1e7):
        return 1e300
    law = _frozen(kind, m, cv)
    ll = law.logpdf(t_ev).sum() + law.logsf(t_cen).sum()
    return float(-ll) if np.isfinite(ll) else 1e300


def kaplan_meier(
    t: np.ndarray, event: np.ndarray, grid: np.ndarray | None = None
) -> dict[str, list[float]]:
    """Kaplan-Meier survival of patience at event times (or ``grid``), Greenwood 95% CI."""
    t = np.round(np.asarray(t, dtype=float), 1)
    ev = np.asarray(event, dtype=bool)
    times, inv = np.unique(t, return_inverse=True)
    d = np.bincount(inv, weights=ev, minlength=times.size)
    total = np.bincount(inv, minlength=times.size).astype(float)
    at_risk = total[::-1].cumsum()[::-1]
    keep = d > 0
    times, d, at_risk = times[keep], d[keep], at_risk[keep]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1 - d / at_risk)
        green = np.cumsum(d / (at_risk * np.maximum(at_risk - d, 1e-12)))
    se = surv * np.sqrt(green)
    if grid is not None:
        k = np.searchsorted(times, grid, side="right") - 1
        s_g = np.where(k >= 0, surv[np.maximum(k, 0)], 1.0)
        se_g = np.where(k >= 0, se[np.maximum(k, 0)], 0.0)
        times, surv, se = np.asarray(grid, float), s_g, se_g
    return {
        "seconds": [float(v) for v in times],
        "survival": [float(v) for v in surv],
        "ci_low": [float(max(0.0, v)) for v in surv - 1.96 * se],
        "ci_high": [float(min(1.0, v)) for v in surv + 1.96 * se],
    }


def fit_patience(wait: np.ndarray, abandoned: np.ndarray, rng: np.random.Generator) -> dict:
    """Censored patience: hazard estimate with its interval, KM, censored MLE laws."""
    w = np.maximum(np.asarray(wait, dtype=float), 0.0)
    ab = np.asarray(abandoned, dtype=bool)
    ok = np.isfinite(w)
    w, ab = w[ok], ab[ok]
    d = int(ab.sum())
    exposure = float(w.sum())
    out: dict[str, Any] = {
        "queued_calls": int(w.size),
        "abandons": d,
        "time_waited_seconds": exposure,
        "method": (
            "answered callers are right-censored at their wait; exponential hazard = "
            "abandons / total time waited (exact chi-square 95% interval); Kaplan-Meier "
            "survival (Greenwood interval); lognormal and gamma by censored maximum likelihood"
        ),
    }
    if d == 0 or exposure <= 0:
        out["chosen"] = None
        out["note"] = "no abandonment observed: callers are taken to never hang up"
        return out
    mean = exposure / d
    lo = 2 * exposure / stats.chi2.ppf(0.975, 2 * d + 2)
    hi = 2 * exposure / stats.chi2.ppf(0.025, 2 * d)
    expo = {
        "distribution": "exponential",
        "mean_seconds": mean,
        "cv": 1.0,
        "mean_ci": [float(lo), float(hi)],
        "log_likelihood": d * math.log(1 / mean) - exposure / mean,
    }
    expo["aic"] = 2 - 2 * expo["log_likelihood"]
    rows = [expo]
    grid = np.array([5, 10, 20, 30, 60, 90, 120, 180, 300, 600], dtype=float)
    out["kaplan_meier"] = kaplan_meier(w, ab, grid[grid <= max(w.max(), 5)])
    if d >= MIN_ABANDONS_FOR_SHAPE:
        idx = np.arange(w.size)
        if w.size > MAX_PATIENCE_SAMPLE:
            idx = rng.choice(w.size, size=MAX_PATIENCE_SAMPLE, replace=False)
        scale = w.size / idx.size
        t_ev = np.maximum(w[idx][ab[idx]], 0.5)
        t_cen = w[idx][~ab[idx]]
        for kind in ("lognormal", "gamma"):
            start = np.array([math.log(mean), 0.0])
            res = optimize.minimize(
                _censored_nll,
                start,
                args=(kind, t_ev, t_cen),
                method="Nelder-Mead",
                options={"xatol": 1e-4, "fatol": 1e-3, "maxiter": 400},
            )
            if not np.isfinite(res.fun) or res.fun >= 1e299:
                continue
            ll = -float(res.fun) * scale
            rows.append(
                {
                    "distribution": kind,
                    "mean_seconds": math.exp(res.x[0]),
                    "cv": math.exp(res.x[1]),
                    "log_likelihood": ll,
                    "aic": 4 - 2 * ll,
                }
            )
    else:
        out["note"] = (
            f"{d} abandons: fewer than {MIN_ABANDONS_FOR_SHAPE}, only the exponential law is fitted"
        )
    out["candidates"] = rows
    best = min(rows, key=lambda r: r["aic"])
    out["criterion"] = "lowest AIC among the censored fits"
    out["chosen"] = best
    out["hazard_mean_seconds"] = mean
    out["hazard_mean_ci"] = [float(lo), float(hi)]
    return out
