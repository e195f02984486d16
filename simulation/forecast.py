"""``ivr forecast``: calls and handle time per interval for the coming days, with intervals.

Model. Daily volume is an ETS model (statsmodels ``ETSModel``: additive error, damped
additive trend, additive weekly seasonality) fitted on the log's days, holidays first
replaced by the same weekday a week earlier so they do not bend the seasonality. A
forecast day on the holiday list is scaled by the ratio its kind of day showed in the
history (holiday / same weekday a week before), or left unscaled when the history has
none (said in the output). Each interval gets its weekday's share of the day (the mean
share over the last ``share_weeks`` weeks). Interval bounds combine the day's 95%
prediction interval with Poisson noise inside the interval. Handle time per interval
of the week is the recent mean talk with its 95% interval.

Backtest. The last ``holdout_days`` days are held out; the model is fitted on the rest
and compared, interval by interval, with the seasonal-naive forecast (the same interval
of the last week before the holdout) computed in the same run: WAPE = sum|f - a| / sum a
and bias = sum(f - a) / sum a.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
from scipy import stats

from simulation.calllog import CallLog

__all__ = ["Forecast", "ForecastOptions", "backtest", "forecast_calls", "read_holidays"]

DAY = 86400.0
MIN_DAYS_FOR_ETS = 21


@dataclass(frozen=True, slots=True)
class ForecastOptions:
    horizon_days: int = 14
    interval_minutes: int = 30
    holidays: frozenset[int] = frozenset()  # days since 1970-01-01
    share_weeks: int = 4


@dataclass(slots=True)
class Forecast:
    """Per-interval forecast from ``first_day`` (days since 1970) for ``days`` days."""

    first_day: int
    days: int
    width: float
    calls: np.ndarray  # (days * slots,)
    calls_low: np.ndarray
    calls_high: np.ndarray
    aht: np.ndarray
    aht_low: np.ndarray
    aht_high: np.ndarray
    daily: np.ndarray
    daily_low: np.ndarray
    daily_high: np.ndarray
    model: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        spd = int(round(DAY / self.width))
        out = []
        for k in range(self.calls.size):
            d, j = divmod(k, spd)
            start = _day_date(self.first_day + d).isoformat() + _clock(j * self.width)
            out.append(
                {
                    "interval_start": start,
                    "calls": round(float(self.calls[k]), 2),
                    "calls_low": round(float(self.calls_low[k]), 2),
                    "calls_high": round(float(self.calls_high[k]), 2),
                    "aht_seconds": _r(self.aht[k]),
                    "aht_low": _r(self.aht_low[k]),
                    "aht_high": _r(self.aht_high[k]),
                }
            )
        return out


def _r(v: float) -> float | None:
    return round(float(v), 1) if math.isfinite(v) else None


def _clock(seconds: float) -> str:
    return f"T{int(seconds // 3600):02d}:{int(seconds % 3600 // 60):02d}"


def _day_date(day: int) -> date:
    return date(1970, 1, 1) + timedelta(days=int(day))


def read_holidays(path: str) -> frozenset[int]:
    """Dates (YYYY-MM-DD), one per line; ``#`` starts a comment. Raises ValueError."""
    days = set()
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            text = line.split("#", 1)[0].strip().split(",")[0].strip()
            if not text:
                continue
            try:
                days.add((date.fromisoformat(text) - date(1970, 1, 1)).days)
            except ValueError:
                raise ValueError(f"{path}: line {n}: {text!r} is not a YYYY-MM-DD date") from None
    return frozenset(days)


def _grid(log: CallLog, width: float) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(first day, counts[day, slot], talk sum[day, slot], answered[day, slot])."""
    day = np.floor(log.arrival / DAY).astype(np.int64)
    d0 = int(day.min())
    n_days = int(day.max()) - d0 + 1
    spd = int(round(DAY / width))
    slot = np.minimum(((log.arrival - day * DAY) // width).astype(np.int64), spd - 1)
    cell = (day - d0) * spd + slot
    size = n_days * spd
    counts = np.bincount(cell, minlength=size).reshape(n_days, spd).astype(float)
    ans = log.is_answered
    talk = np.bincount(cell[ans], weights=log.talk[ans], minlength=size).reshape(n_days, spd)
    n_ans = np.bincount(cell[ans], minlength=size).reshape(n_days, spd).astype(float)
    return d0, counts, talk, n_ans


def _weekday(day: np.ndarray | int) -> np.ndarray:
    return (np.asarray(day) + 3) % 7


def _clean_holidays(daily: np.ndarray, days: np.ndarray, holidays: frozenset[int]):  # type: ignore[no-untyped-def]
    """Holidays replaced by the same weekday a week before; the holiday ratios seen."""
    y = daily.copy()
    ratios = []
    for k, d in enumerate(days.tolist()):
        if d in holidays and k >= 7:
            base = y[k - 7]
            if base > 0:
                ratios.append(daily[k] / base)
            y[k] = base
    return y, ratios


def _fit_daily(y: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Daily forecast and 95% bounds: ETS when the history allows, else seasonal naive."""
    if y.size >= MIN_DAYS_FOR_ETS:
        import pandas as pd
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            series = pd.Series(y, index=pd.RangeIndex(y.size))
            model = ETSModel(
                series,
                error="add",
                trend="add",
                damped_trend=True,
                seasonal="add",
                seasonal_periods=7,
            )
            res = model.fit(disp=False, maxiter=2000)
            pred = res.get_prediction(start=y.size, end=y.size + horizon - 1)
            frame = pred.summary_frame(alpha=0.05)
        mean = np.asarray(frame["mean"], float)
        low = np.asarray(frame["pi_lower"], float)
        high = np.asarray(frame["pi_upper"], float)
        info = {
            "model": "ETS(A,Ad,A) weekly, statsmodels ETSModel",
            "aic": float(res.aic),
            "params": {
                k: float(v)
                for k, v in zip(res.param_names, res.params, strict=False)
                if not k.startswith("initial")
            },
            "warnings": sorted({str(w.message).split("\n")[0] for w in caught}),
        }
    else:
        last = y[-7:] if y.size >= 7 else np.full(7, y.mean())
        mean = np.resize(last, horizon)
        resid = (y[7:] - y[:-7]) if y.size > 7 else y - y.mean()
        sd = float(np.std(resid)) if resid.size > 1 else float(np.sqrt(max(y.mean(), 1.0)))
        low, high = mean - 1.96 * sd, mean + 1.96 * sd
        info = {"model": f"seasonal naive (fewer than {MIN_DAYS_FOR_ETS} days of history)"}
    closed = np.resize(_closed_weekdays(y), horizon)
    mean, low, high = (np.where(closed, 0.0, np.maximum(v, 0.0)) for v in (mean, low, high))
    return mean, low, high, info


def _closed_weekdays(y: np.ndarray) -> np.ndarray:
    """Per position in the week (aligned so the forecast's first day is position 0):
    True where every such day of the history had no call."""
    n = y.size
    out = np.zeros(7, dtype=bool)
    for k in range(7):
        idx = np.arange(n - 7 + k, -1, -7) if n >= 7 - k else np.array([], int)
        idx = idx[(idx >= 0) & (idx < n)]
        out[k] = idx.size > 0 and bool((y[idx] == 0).all())
    return out


def forecast_calls(log: CallLog, opts: ForecastOptions, until_day: int | None = None) -> Forecast:
    """Forecast the days after the log (or after ``until_day``, holding later days out)."""
    width = opts.interval_minutes * 60.0
    d0, counts, talk, n_ans = _grid(log, width)
    if until_day is not None:
        keep = max(1, until_day - d0)
        counts, talk, n_ans = counts[:keep], talk[:keep], n_ans[:keep]
    n_days, spd = counts.shape
    days = np.arange(n_days) + d0
    daily = counts.sum(axis=1)
    y, ratios = _clean_holidays(daily, days, opts.holidays)
    h = opts.horizon_days
    mean, low, high, info = _fit_daily(y, h)
    first = d0 + n_days
    f_days = np.arange(h) + first
    hol_factor = float(np.mean(ratios)) if ratios else None
    for k, d in enumerate(f_days.tolist()):
        if d in opts.holidays and hol_factor is not None:
            mean[k], low[k], high[k] = (
                mean[k] * hol_factor,
                low[k] * hol_factor,
                high[k] * hol_factor,
            )
    # interval shares per weekday, from recent ordinary days
    ordinary = np.array([d not in opts.holidays for d in days.tolist()])
    shares = np.full((7, spd), 1.0 / spd)
    wd = _weekday(days)
    for k in range(7):
        sel = np.flatnonzero((wd == k) & ordinary & (daily > 0))[-opts.share_weeks :]
        if sel.size:
            shares[k] = counts[sel].sum(axis=0) / counts[sel].sum()
    f_wd = _weekday(f_days)
    share = shares[f_wd]  # (h, spd)
    calls = mean[:, None] * share
    z = 1.96
    sd_day = (high - low) / (2 * z)
    sd = np.sqrt((share * sd_day[:, None]) ** 2 + calls)
    c_low, c_high = np.maximum(calls - z * sd, 0.0), calls + z * sd
    # handle time per interval of the week, recent weeks
    aht = np.full((7, spd), np.nan)
    aht_lo, aht_hi = aht.copy(), aht.copy()
    for k in range(7):
        sel = np.flatnonzero(wd == k)[-opts.share_weeks :]
        if not sel.size:
            continue
        tot, n = talk[sel].sum(axis=0), n_ans[sel].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            aht[k] = tot / n
            per_day = talk[sel] / n_ans[sel]
            valid = np.isfinite(per_day)
            cnt = valid.sum(axis=0)
            dev = np.where(valid, per_day - aht[k], 0.0)
            sd_means = np.sqrt((dev**2).sum(axis=0) / (cnt - 1))
            half = stats.t.ppf(0.975, np.maximum(cnt - 1, 1)) * sd_means / np.sqrt(cnt)
            half = np.where(cnt > 1, half, np.nan)
        aht_lo[k], aht_hi[k] = aht[k] - half, aht[k] + half
    info["holiday_factor"] = hol_factor
    info["holidays_in_horizon"] = [_day_date(d).isoformat() for d in f_days if d in opts.holidays]
    if info["holidays_in_horizon"] and hol_factor is None:
        info["note"] = "holidays in the horizon but none in the history: left unscaled"
    info["interval_share"] = f"mean share of the day over the last {opts.share_weeks} same weekdays"
    return Forecast(
        first_day=first,
        days=h,
        width=width,
        calls=calls.ravel(),
        calls_low=c_low.ravel(),
        calls_high=c_high.ravel(),
        aht=aht[f_wd].ravel(),
        aht_low=aht_lo[f_wd].ravel(),
        aht_high=aht_hi[f_wd].ravel(),
        daily=mean,
        daily_low=low,
        daily_high=high,
        model=info,
    )


def _wape(f: np.ndarray, a: np.ndarray) -> float:
    return float(np.abs(f - a).sum() / a.sum()) if a.sum() > 0 else math.nan


def _bias(f: np.ndarray, a: np.ndarray) -> float:
    return float((f - a).sum() / a.sum()) if a.sum() > 0 else math.nan


def backtest(log: CallLog, opts: ForecastOptions, holdout_days: int = 14) -> dict[str, Any]:
    """Hold out the last days; WAPE and bias per interval of the day, model vs seasonal naive."""
    width = opts.interval_minutes * 60.0
    d0, counts, _, _ = _grid(log, width)
    n_days, spd = counts.shape
    if n_days < holdout_days + 14:
        raise ValueError(
            f"the log covers {n_days} days: a {holdout_days}-day backtest needs "
            f"{holdout_days + 14} or more"
        )
    cut = d0 + n_days - holdout_days
    fc = forecast_calls(
        log,
        ForecastOptions(holdout_days, opts.interval_minutes, opts.holidays, opts.share_weeks),
        until_day=cut,
    )
    actual = counts[n_days - holdout_days :]
    model = fc.calls.reshape(holdout_days, spd)
    last_week = counts[n_days - holdout_days - 7 : n_days - holdout_days]
    naive = np.resize(last_week, (holdout_days, spd))
    rows = []
    for j in range(spd):
        a = actual[:, j]
        if a.sum() == 0 and model[:, j].sum() < 0.5:
            continue
        rows.append(
            {
                "interval": _clock(j * width)[1:],
                "actual": float(a.sum()),
                "wape": _wape(model[:, j], a),
                "bias": _bias(model[:, j], a),
                "naive_wape": _wape(naive[:, j], a),
                "naive_bias": _bias(naive[:, j], a),
            }
        )
    total = {
        "wape": _wape(model.ravel(), actual.ravel()),
        "bias": _bias(model.ravel(), actual.ravel()),
        "naive_wape": _wape(naive.ravel(), actual.ravel()),
        "naive_bias": _bias(naive.ravel(), actual.ravel()),
        "daily_wape": _wape(model.sum(axis=1), actual.sum(axis=1)),
        "naive_daily_wape": _wape(naive.sum(axis=1), actual.sum(axis=1)),
    }
    beats = total["wape"] < total["naive_wape"]
    return {
        "holdout": {
            "first_day": _day_date(cut).isoformat(),
            "days": holdout_days,
            "interval_minutes": opts.interval_minutes,
        },
        "definitions": {
            "wape": "sum |forecast - actual| / sum actual, over the held-out intervals",
            "bias": "sum (forecast - actual) / sum actual (positive: over-forecast)",
            "seasonal_naive": "the same interval of the last week before the holdout",
        },
        "model": fc.model.get("model"),
        "overall": total,
        "beats_seasonal_naive": bool(beats),
        "verdict": (
            f"the model beats seasonal naive: WAPE {total['wape']:.1%} vs {total['naive_wape']:.1%}"
            if beats
            else f"the model does NOT beat seasonal naive: WAPE {total['wape']:.1%} vs "
            f"{total['naive_wape']:.1%}"
        ),
        "by_interval": rows,
    }
