"""PNG chart of a forecast: calls per interval with the 95% band."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simulation.forecast import Forecast

__all__ = ["write_forecast_chart"]


def write_forecast_chart(fc: Forecast, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = np.arange(fc.calls.size) * fc.width / 86400.0
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.fill_between(days, fc.calls_low, fc.calls_high, alpha=0.3, label="95% interval")
    ax.plot(days, fc.calls, lw=1, label="forecast")
    ax.set(xlabel="days ahead", ylabel="calls per interval", title="Forecast")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
