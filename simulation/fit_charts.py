"""PNG charts of a fit: arrivals by weekday, handle-time law, patience survival, staff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from simulation.laws import _frozen

__all__ = ["write_fit_charts"]


def write_fit_charts(charts: dict[str, Any], out: Path) -> list[Path]:
    """Write ``fit_*.png`` into ``out``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    width = charts["width"]
    counts = charts["counts"] * (3600.0 / width)
    hours = np.arange(counts.shape[1]) * width / 3600.0
    fig, ax = plt.subplots(figsize=(9, 4))
    mean, sd = counts.mean(axis=0), counts.std(axis=0)
    ax.plot(hours, mean, label="mean over the log's days")
    ax.fill_between(
        hours, np.maximum(mean - sd, 0), mean + sd, alpha=0.3, label="± 1 sd (day to day)"
    )
    ax.set(xlabel="hour of day", ylabel="calls per hour", title="Arrivals per interval")
    ax.legend()
    paths.append(_save(fig, out / "fit_arrivals.png", plt))

    talk = np.asarray(charts["talk"], float)
    fig, ax = plt.subplots(figsize=(7, 4))
    if talk.size:
        top = float(np.quantile(talk, 0.99))
        ax.hist(talk[talk <= top], bins=60, density=True, alpha=0.5, label="log")
        chosen = charts["handle"]["chosen"]
        xs = np.linspace(0.5, top, 300)
        for c in charts["handle"]["candidates"]:
            law = _frozen(c["distribution"], c["mean_seconds"], c["cv"])
            ax.plot(xs, law.pdf(xs), label=f"{c['distribution']} (AIC {c['aic']:.0f})")
        ax.set_title(f"Handle time: chosen {chosen['distribution']}")
    ax.set(xlabel="seconds", ylabel="density")
    ax.legend()
    paths.append(_save(fig, out / "fit_handle_time.png", plt))

    pat = charts["patience"]
    fig, ax = plt.subplots(figsize=(7, 4))
    km = pat.get("kaplan_meier")
    if km:
        ax.step(km["seconds"], km["survival"], where="post", label="Kaplan-Meier (censored)")
        ax.fill_between(km["seconds"], km["ci_low"], km["ci_high"], step="post", alpha=0.3)
        xs = np.linspace(0, max(km["seconds"]), 200)
        for c in pat.get("candidates", []):
            law = _frozen(c["distribution"], c["mean_seconds"], c["cv"])
            ax.plot(xs, law.sf(xs), label=f"{c['distribution']} (AIC {c['aic']:.0f})")
        ax.legend()
    ax.set(xlabel="seconds waited", ylabel="share still willing to wait", title="Patience")
    paths.append(_save(fig, out / "fit_patience.png", plt))

    fig, ax = plt.subplots(figsize=(9, 4))
    for name, staff in charts["staff"].items():
        s = np.asarray(staff)
        ax.step(np.arange(s.size) * width / 3600.0, s, where="post", label=name)
    ax.set(xlabel="scenario hour", ylabel="agents (estimate)", title="Effective staff")
    ax.legend(fontsize="small")
    paths.append(_save(fig, out / "fit_staff.png", plt))
    return paths


def _save(fig, path: Path, plt) -> Path:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
