"""``ivr fit`` on a large call log: wall time and peak memory, against reading the CSV alone.

    .venv/bin/python scripts/bench_fit.py --rows 1000000 [--json]

Writes (once) a synthetic log of about ``--rows`` calls (simulation.synthetic) under
``out/bench/``, then runs, each in a fresh process: the baseline (Python's csv module
reading every row, nothing else) and ``ivr fit`` (read, check, fit, write; no charts).
Targets: under 60 s and 2 GB for a million rows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

BASELINE = "import csv,sys\nn=0\nfor r in csv.reader(open(sys.argv[1], newline='')): n+=1"
FIT = (
    "import sys,runpy\nsys.argv=['ivr',*sys.argv[1:]]\n"
    "runpy.run_module('ivr.cli', run_name='__main__')"
)
PEAK = (
    "\nimport resource,sys\n"
    "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
)


def _run(code: str, *argv: str) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``code`` in a fresh interpreter."""
    wrapped = f"try:\n    exec({code!r})\nexcept SystemExit:\n    pass{PEAK}"
    t = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", wrapped, *argv], check=True, capture_output=True, text=True
    )
    wall = time.perf_counter() - t
    return wall, int(done.stderr.strip().splitlines()[-1]) / 1024.0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.rows < 1000:
        p.error("--rows must be at least 1000")
    out = Path("out/bench")
    out.mkdir(parents=True, exist_ok=True)
    log = out / f"calls_{args.rows}.csv"
    days = 200
    peak = 240.0 * args.rows / (1278.0 * days)  # the example centre makes ~1,278 calls a day
    if not log.exists():
        subprocess.run(
            [
                sys.executable,
                "scripts/make_call_log.py",
                "--days",
                str(days),
                "--peak-rate",
                f"{peak:.1f}",
                "--out",
                str(log),
            ],
            check=True,
        )
    rows = sum(1 for _ in log.open()) - 1
    base_s, base_mb = _run(BASELINE, str(log))
    fit_s, fit_mb = _run(FIT, "fit", str(log), "--out", str(out / "scenario.yaml"), "--no-charts")
    res = {
        "rows": rows,
        "file_mb": round(log.stat().st_size / 1e6, 1),
        "baseline_csv_read_seconds": round(base_s, 2),
        "baseline_peak_rss_mb": round(base_mb, 1),
        "fit_seconds": round(fit_s, 2),
        "fit_over_baseline": round(fit_s / base_s, 2),
        "fit_peak_rss_mb": round(fit_mb, 1),
        "targets": {"seconds": 60, "rss_mb": 2048},
        "meets_targets": fit_s < 60 and fit_mb < 2048,
    }
    if args.json:
        sys.stdout.write(json.dumps(res, indent=2) + "\n")
    else:
        for k, v in res.items():
            sys.stdout.write(f"{k:<28}{v}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
