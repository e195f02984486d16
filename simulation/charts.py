"""PNG charts of a run: service level and waiting by interval, staffing against load, waits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulation.runner import RunResult

__all__ = ["write_charts"]


def _hours(result: RunResult) -> np.ndarray:
    """Interval starts and the end of the last interval, in hours."""
    starts = np.array([row["interval_start_seconds"]["mean"] for row in result.intervals]) / 3600.0
    return np.append(starts, result.scenario.horizon_seconds / 3600.0)


def _series(result: RunResult, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, CI low and CI high per interval, the last repeated so steps cover the last interval."""
    rows = result.intervals
    out = []
    for part in ("mean", "ci_low", "ci_high"):
        v = np.array([r[key][part] for r in rows], dtype=float)
        out.append(np.append(v, v[-1]))
    return out[0], out[1], out[2]


def write_charts(result: RunResult, out: Path) -> list[Path]:
    """Write the charts into ``out``; return their paths. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    sc = result.scenario
    hours = _hours(result)
    width = sc.interval_seconds / 3600.0
    written: list[Path] = []

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    m, lo, hi = _series(result, "service_level")
    ax1.step(hours, m, where="post", label="service level")
    ax1.fill_between(hours, lo, hi, step="post", alpha=0.25, label="95% CI")
    a, alo, ahi = _series(result, "abandon_rate")
    ax1.step(hours, a, where="post", label="abandon rate")
    ax1.fill_between(hours, alo, ahi, step="post", alpha=0.25)
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel("share of offered")
    ax1.set_title(
        f"Service level (answered within {sc.service_level_threshold:g} s / offered) by interval"
    )
    ax1.legend(loc="lower left")
    w, wlo, whi = _series(result, "asa_seconds")
    ax2.step(hours, w, where="post", label="ASA (answered calls)")
    ax2.fill_between(hours, wlo, whi, step="post", alpha=0.25)
    ax2.set_ylabel("seconds")
    ax2.set_xlabel("hour of the day")
    ax2.legend(loc="upper left")
    fig.tight_layout()
    p = out / "service_level.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)

    fig, ax = plt.subplots(figsize=(9, 4))
    offered, _, _ = _series(result, "offered_to_queue")
    aht, _, _ = _series(result, "aht_seconds")
    load = (
        offered * np.nan_to_num(aht) / (width * 3600.0)
    )  # offered load: queued calls x handle time
    agents, _, _ = _series(result, "agents")
    ax.step(hours, agents, where="post", label="agents logged in")
    ax.step(hours, load, where="post", label="offered load (Erlangs)")
    ax.set_xlabel("hour of the day")
    ax.set_ylabel("agents / Erlangs")
    ax.set_title("Staffing against load")
    ax.legend()
    fig.tight_layout()
    p = out / "staffing_vs_load.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)

    fig, ax = plt.subplots(figsize=(9, 4))
    waits = (
        np.concatenate([r.answered_waits for r in result.replications])
        if result.replications
        else np.zeros(0)
    )
    positive = waits[waits > 0]
    if positive.size:
        ax.hist(positive, bins=60, color="tab:blue", alpha=0.8)
    ax.axvline(sc.service_level_threshold, color="tab:red", linestyle="--", label="threshold")
    share0 = float((waits <= 0).mean()) if waits.size else float("nan")
    ax.set_title(f"Wait of answered calls (answered at once: {share0:.1%})")
    ax.set_xlabel("seconds")
    ax.set_ylabel("calls (all replications)")
    ax.legend()
    fig.tight_layout()
    p = out / "wait_distribution.png"
    fig.savefig(p, dpi=100)
    plt.close(fig)
    written.append(p)
    return written
