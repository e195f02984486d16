"""Write a realistic synthetic call log (simulation.synthetic) for trying the planner's path.

.venv/bin/python scripts/make_call_log.py --days 28 --out out/calls.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulation.calllog import write_calls
from simulation.synthetic import SyntheticCentre, generate_calls, holiday_dates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--days", type=int, default=28, help="days of traffic (1-400)")
    p.add_argument("--peak-rate", type=float, default=240.0, help="calls per hour at the peak")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", required=True, help="CSV to write")
    p.add_argument("--holidays-out", help="also write the centre's holidays (YYYY-MM-DD) here")
    args = p.parse_args()
    if not 1 <= args.days <= 400:
        p.error("--days must be between 1 and 400")
    if not args.peak_rate > 0:
        p.error("--peak-rate must be > 0")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    centre = SyntheticCentre(days=args.days, peak_rate=args.peak_rate, seed=args.seed)
    n = write_calls(out, generate_calls(centre), utc_offset_hours=1.0)
    if args.holidays_out:
        Path(args.holidays_out).write_text("".join(f"{d}\n" for d in holiday_dates(centre)))
    sys.stdout.write(f"wrote {n:,} calls over {args.days} days to {out}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
