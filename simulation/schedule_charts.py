"""Coverage chart of a schedule: required vs scheduled per interval, service level reached."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulation.schedule import ScheduleResult
from simulation.schedule_check import CheckRound

__all__ = ["write_coverage_chart"]


def write_coverage_chart(sched: ScheduleResult, check: CheckRound | None, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    req = sched.req.agents.sum(axis=0)
    avail = sched.available().sum(axis=0)
    hours = np.arange(req.size) * sched.req.width / 3600.0
    fig, ax = plt.subplots(figsize=(11, 4))
    ax.step(hours, req, where="post", label="required", color="black")
    ax.step(hours, avail, where="post", label="scheduled (after shrinkage)", color="tab:blue")
    ax.set(xlabel="hour from the first day's midnight", ylabel="agents", title="Coverage")
    if check is not None:
        ax2 = ax.twinx()
        ax2.plot(hours, check.service_level, ".", ms=3, color="tab:green", label="service level")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("service level reached (twin)")
        ax2.legend(loc="upper right")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
