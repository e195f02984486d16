"""PNG charts of a run: service level and waiting by interval, staffing against load, waits."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulation.runner import RunResult

__all__ = ["write_charts", "write_staffing_chart"]


def _clock(ax) -> None:  # type: ignore[no-untyped-def]
    """Label an axis of hours since midnight with clock times (08:30)."""
    from matplotlib.ticker import FuncFormatter

    ax.xaxis.set_major_formatter(
        FuncFormatter(lambda h, _: f"{int(h // 1) % 24:02d}:{round(h % 1 * 60) % 60:02d}")
    )
    ax.set_xlabel("time of day")


def _per_intent_service_level(result: RunResult) -> dict[str, np.ndarray]:
    """Service level per intent (queue) and interval, over all replications (needs a run
    with ``by_intent``); {} for a single-queue run."""
    counts = [r.intent_counts for r in result.replications if r.intent_counts is not None]
    names = [it.name for it in result.scenario.intent_list]
    if not counts or len(names) < 2:
        return {}
    total = np.sum(counts, axis=0)  # (intent, interval, [queued, within T, abandoned])
    with np.errstate(invalid="ignore", divide="ignore"):
        sl = total[:, :, 1] / total[:, :, 0]
    return {name: np.append(sl[k], sl[k][-1]) for k, name in enumerate(names[: sl.shape[0]])}


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


def write_charts(result: RunResult, out: Path, target: float | None = None) -> list[Path]:
    """Write the charts into ``out``; return their paths. Needs matplotlib. ``target``: the
    service-level target drawn on ``service_level.png``."""
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
    ax1.step(hours, m, where="post", label="service level (all calls)")
    ax1.fill_between(hours, lo, hi, step="post", alpha=0.25, label="95% CI")
    for name, sl in _per_intent_service_level(result).items():
        ax1.step(hours, sl, where="post", linewidth=1, alpha=0.8, label=f"SL {name}")
    if target is not None:
        ax1.axhline(target, color="tab:red", linestyle="--", label=f"target {target:.0%}")
    a, alo, ahi = _series(result, "abandon_rate")
    ax1.step(hours, a, where="post", label="abandon rate")
    ax1.fill_between(hours, alo, ahi, step="post", alpha=0.25)
    ax1.set_ylim(0, 1.02)
    ax1.set_ylabel("share of offered")
    ax1.set_title(
        f"Service level (answered within {sc.service_level_threshold:g} s / offered) by interval"
    )
    ax1.legend(loc="lower left", fontsize="small", ncol=2)
    w, wlo, whi = _series(result, "asa_seconds")
    ax2.step(hours, w, where="post", label="ASA (answered calls)")
    ax2.fill_between(hours, wlo, whi, step="post", alpha=0.25)
    ax2.set_ylabel("seconds")
    _clock(ax2)
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
    _clock(ax)
    ax.set_ylim(bottom=0)
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


def write_staffing_chart(plan, path: Path) -> Path:  # type: ignore[no-untyped-def]
    """``staffing.png`` of ``ivr staff``: agents needed (simulated and Erlang) against the
    offered load per interval, and the service level reached against the target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = plan.interval_seconds / 3600.0
    n = plan.counts.shape[1]
    hours = np.arange(n + 1) * width

    def steps(v: np.ndarray) -> np.ndarray:
        return np.append(v, v[-1])

    calls = plan.offered_per_hour.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sl = np.nansum(plan.service_level * plan.offered_per_hour, axis=0) / np.where(
            calls > 0, calls, np.nan
        )
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    ax1.step(hours, steps(plan.counts.sum(axis=0)), where="post", label="agents (simulated)")
    ax1.step(hours, steps(plan.analytic.sum(axis=0)), where="post", linestyle=":",
             label="agents (Erlang)")
    if plan.offered_erlangs is not None:
        ax1.step(hours, steps(plan.offered_erlangs.sum(axis=0)), where="post",
                 label="offered load (Erlangs)")
    ax1.set_ylim(bottom=0)
    ax1.set_ylabel("agents / Erlangs")
    ax1.set_title("Agents needed per interval against the offered load")
    ax1.legend(loc="upper left")
    ax2.step(hours, steps(sl), where="post", label="service level reached")
    ax2.axhline(plan.targets.service_level, color="tab:red", linestyle="--",
                label=f"target {plan.targets.service_level:.0%} in "
                      f"{plan.targets.within_seconds:g} s")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("share of offered")
    ax2.legend(loc="lower left")
    _clock(ax2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
