"""The planner's commands: ``ivr fit`` (and ``forecast``, ``schedule`` when present).

Registered on the ``ivr`` parser by :func:`simulation.cli.add_commands`. Bad input
exits 2 with one line naming the file, line or flag; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import yaml

from ivr.argtypes import probability
from simulation.errors import SimulationError

__all__ = ["add_planning_commands"]

log = logging.getLogger(__name__)


def _replications(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 2 <= v <= 10_000:
        raise argparse.ArgumentTypeError(f"{text} must be between 2 and 10000")
    return v


def _nonneg(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return v


def _positive(text: str) -> float:
    v = _nonneg(text)
    if v == 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= v <= 1000:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1000")
    return v


def _fail(command: str, message: str) -> int:
    sys.stderr.write(f"ivr {command}: error: {message}\n")
    return 2


def cmd_fit(args: argparse.Namespace) -> int:
    """Fit a scenario from a call log; write it, fit_report.json and charts."""
    from simulation.calllog import call_log_json_schema
    from simulation.fit import FitOptions, clean_json, fit_call_log

    if args.schema:
        sys.stdout.write(call_log_json_schema() + "\n")
        return 0
    if not args.calls or not args.out:
        return _fail("fit", "give a call log CSV and --out scenario.yaml")
    try:
        calls = _read_log(args)
        opts = FitOptions(
            interval_minutes=args.interval,
            span=args.span,
            wait_threshold=args.wait_threshold,
            replications=args.replications,
            seed=args.seed,
        )
        result = fit_call_log(calls, opts)
    except SimulationError as exc:
        return _fail("fit", str(exc))
    except ValueError as exc:
        return _fail("fit", f"{args.calls}: {exc}")
    out = Path(args.out)
    report_dir = Path(args.report_dir) if args.report_dir else out.parent
    report_dir.mkdir(parents=True, exist_ok=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Fitted by `ivr fit` from {args.calls} ({calls.size:,} calls). Evidence, intervals\n"
        f"# and what the scenario does not hold: {report_dir / 'fit_report.json'}\n"
    )
    out.write_text(
        header
        + yaml.safe_dump(result.scenario, sort_keys=False, default_flow_style=None, width=100),
        encoding="utf-8",
    )
    report = clean_json(result.report)
    (report_dir / "fit_report.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    if not args.no_charts:
        try:
            from simulation.fit_charts import write_fit_charts

            write_fit_charts(result.charts, report_dir)
        except ImportError:
            sys.stderr.write("note: matplotlib is not installed; charts skipped\n")
    o = sys.stdout
    p = result.report["patience"]
    h = result.report["handle_time"]["all"]
    o.write(f"{calls.rows:,} rows, {calls.bad_rows:,} bad")
    o.write(f" ({'; '.join(str(b) for b in calls.bad[:3])})\n" if calls.bad else "\n")
    for b in calls.bad[3:20]:
        log.info("bad row: %s", b)
    o.write(
        f"handle time: {h['chosen']['distribution']}, mean {h['mean_seconds']:.1f} s "
        f"[{h['mean_ci'][0]:.1f}, {h['mean_ci'][1]:.1f}]\n"
    )
    if p.get("chosen"):
        lo, hi = p["hazard_mean_ci"]
        o.write(
            f"patience (censored): {p['chosen']['distribution']}, hazard mean "
            f"{p['hazard_mean_seconds']:.1f} s [{lo:.1f}, {hi:.1f}] "
            f"from {p['abandons']:,} abandons\n"
        )
    else:
        o.write("patience: no abandonment in the log\n")
    pools = result.report["staffing"]["pools"]
    o.write(f"staff: {len(pools)} agent pool(s), estimated per interval (see fit_report.json)\n")
    o.write(f"wrote {out} and {report_dir / 'fit_report.json'}\n")
    return 0


def _days(text: str) -> int:
    """``14d``, ``2w`` or a number of days, 1 to 366."""
    t = text.strip().lower()
    mult = 7 if t.endswith("w") else 1
    try:
        v = int(t.rstrip("dw")) * mult
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 14d or 2w") from None
    if not 1 <= v <= 366:
        raise argparse.ArgumentTypeError(f"{text} must be between 1 and 366 days")
    return v


def _read_log(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from simulation.calllog import parse_column_map, read_calls

    return read_calls(args.calls, parse_column_map(args.columns), max_bad_share=args.max_bad)


def cmd_forecast(args: argparse.Namespace) -> int:
    """Forecast calls and handle time per interval; optionally backtest against seasonal naive."""
    import csv

    from simulation.fit import clean_json
    from simulation.forecast import ForecastOptions, backtest, forecast_calls, read_holidays

    try:
        holidays = read_holidays(args.holidays) if args.holidays else frozenset()
        calls = _read_log(args)
        opts = ForecastOptions(args.horizon, args.interval, holidays)
        fc = forecast_calls(calls, opts)
        bt = backtest(calls, opts, args.holdout) if args.backtest else None
    except SimulationError as exc:
        return _fail("forecast", str(exc))
    except ImportError as exc:
        return _fail("forecast", f"{exc.name} is missing: pip install -e '.[planning]'")
    except (ValueError, OSError) as exc:
        return _fail("forecast", str(exc))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = fc.rows()
    with (out / "forecast.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    doc = {
        "source": args.calls,
        "horizon_days": fc.days,
        "interval_minutes": args.interval,
        "model": fc.model,
        "daily": [
            {
                "day": r[0],
                "calls": round(float(r[1]), 1),
                "low": round(float(r[2]), 1),
                "high": round(float(r[3]), 1),
            }
            for r in zip(
                [x["interval_start"][:10] for x in rows[:: len(rows) // fc.days]],
                fc.daily,
                fc.daily_low,
                fc.daily_high,
                strict=True,
            )
        ],
    }
    (out / "forecast.json").write_text(json.dumps(clean_json(doc), indent=2) + "\n", "utf-8")
    o = sys.stdout
    o.write(f"{fc.model['model']}; {fc.days} days from {doc['daily'][0]['day']}\n")
    for d in doc["daily"]:
        o.write(f"  {d['day']}  {d['calls']:>9,.0f} calls  [{d['low']:,.0f}, {d['high']:,.0f}]\n")
    if bt is not None:
        (out / "backtest.json").write_text(json.dumps(clean_json(bt), indent=2) + "\n", "utf-8")
        with (out / "backtest.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(bt["by_interval"][0]))
            w.writeheader()
            w.writerows(clean_json(bt["by_interval"]))
        t = bt["overall"]
        o.write(f"backtest on the last {args.holdout} days, per interval:\n")
        o.write(f"  {'':<16}{'WAPE':>8}{'bias':>8}\n")
        o.write(f"  {'model':<16}{t['wape']:>8.1%}{t['bias']:>+8.1%}\n")
        o.write(f"  {'seasonal naive':<16}{t['naive_wape']:>8.1%}{t['naive_bias']:>+8.1%}\n")
        o.write(bt["verdict"] + "\n")
    if not args.no_charts:
        try:
            from simulation.forecast_charts import write_forecast_chart

            write_forecast_chart(fc, out / "forecast.png")
        except ImportError:
            sys.stderr.write("note: matplotlib is not installed; charts skipped\n")
    o.write(f"wrote {out / 'forecast.csv'}\n")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    """Shifts from requirements (HiGHS), then checked and mended in the twin."""
    from datetime import date

    from simulation.fit import clean_json
    from simulation.scenario import load_scenario
    from simulation.schedule import load_shift_spec, solve_schedule
    from simulation.schedule_check import (
        mend_schedule,
        read_forecast,
        requirements_from_forecast,
        requirements_from_staffing,
        twin_scenario,
        write_schedule_files,
    )

    if bool(args.forecast) == bool(args.requirements):
        return _fail("schedule", "give exactly one of --forecast and --requirements")
    try:
        spec = load_shift_spec(args.shifts)
        if args.time_limit is not None:
            spec = spec.model_copy(update={"time_limit_seconds": args.time_limit})
        base = load_scenario(args.scenario)
        calls = None
        if args.forecast:
            fc = read_forecast(args.forecast)
            calls = fc.calls
            req = requirements_from_forecast(
                fc, base, args.service_level, args.within, args.max_abandon
            )
        else:
            day0 = base.start_at.date() if base.start_at is not None else date(1970, 1, 1)
            req = requirements_from_staffing(
                args.requirements, first_day=(day0 - date(1970, 1, 1)).days
            )
        sched = solve_schedule(req, spec)
        first_cost = sched.cost
        history = []
        if not args.no_check:
            history = mend_schedule(
                base,
                sched,
                calls,
                args.service_level,
                args.max_abandon,
                budget=args.budget,
                rounds=args.rounds,
                replications=args.replications,
                workers=args.workers,
            )
        twin = twin_scenario(base, sched, calls, args.replications)
    except SimulationError as exc:
        return _fail("schedule", str(exc))
    out = Path(args.out)
    write_schedule_files(sched, out, twin)
    doc = {
        "requirements": args.forecast or args.requirements,
        "groups": list(req.groups),
        "interval_minutes": req.width / 60,
        "days": req.days,
        "solver": {
            "status": sched.status,
            "gap": sched.gap,
            "dual_bound": sched.dual_bound,
            "solve_seconds": round(sched.solve_seconds, 3),
            "time_limit_seconds": spec.time_limit_seconds,
            "columns": len(sched.columns),
        },
        "cost_solved": first_cost,
        "cost_final": sched.cost,
        "lower_bound_cost": sched.lower_bound_cost,
        "lower_bound": "required agent-hours after shrinkage, at each group's cost per hour",
        "shifts": int(sched.x.sum()),
        "twin_rounds": [
            {"cost": r.cost, "failing_intervals": int(r.failing.size), **r.overall} for r in history
        ],
        "targets": {
            "service_level": args.service_level,
            "within_seconds": args.within,
            "max_abandon": args.max_abandon,
        },
        "targets_hold": bool(history and not history[-1].failing.size) if history else None,
    }
    (out / "schedule.json").write_text(json.dumps(clean_json(doc), indent=2) + "\n", "utf-8")
    if not args.no_charts:
        try:
            from simulation.schedule_charts import write_coverage_chart

            write_coverage_chart(sched, history[-1] if history else None, out / "coverage.png")
        except ImportError:
            sys.stderr.write("note: matplotlib is not installed; charts skipped\n")
    o = sys.stdout
    o.write(
        f"{int(sched.x.sum())} shifts, cost {sched.cost:,.0f} (solved {first_cost:,.0f}; lower "
        f"bound {sched.lower_bound_cost:,.0f}); HiGHS {sched.status}, gap "
        f"{(sched.gap or 0):.2%}, {sched.solve_seconds:.1f} s\n"
    )
    for k, r in enumerate(history):
        o.write(
            f"twin round {k}: cost {r.cost:,.0f}, service level {r.overall['service_level']:.1%}, "
            f"abandon {r.overall['abandon_rate']:.1%}, {r.failing.size} interval(s) short\n"
        )
    if history:
        o.write(
            "targets hold in every interval\n"
            if doc["targets_hold"]
            else "targets NOT met everywhere (budget or rounds reached)\n"
        )
    o.write(
        f"wrote {out / 'schedule.csv'}, {out / 'roster.csv'} and "
        f"{out / 'scheduled_scenario.yaml'}\n"
    )
    return 0 if doc["targets_hold"] in (True, None) else 1


def _log_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--columns",
        help="map export columns: canonical=export,... or a YAML file {columns:, outcomes:}",
    )
    p.add_argument(
        "--max-bad", type=probability, default=0.01, help="refuse a log with more bad rows (share)"
    )


def add_planning_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``fit`` (and the other planning commands) on the ``ivr`` parser."""
    p = subparsers.add_parser("fit", help="fit a simulator scenario from a call log CSV")
    p.add_argument("calls", nargs="?", help="call log CSV (see `ivr fit --schema`)")
    p.add_argument("--out", help="scenario YAML to write")
    p.add_argument(
        "--report-dir", help="where fit_report.json and charts go (default: beside --out)"
    )
    _log_args(p)
    p.add_argument("--interval", type=int, choices=(15, 30, 60), default=30, help="minutes")
    p.add_argument(
        "--span",
        choices=("auto", "log", "week", "day"),
        default="auto",
        help="scenario calendar: the log's own days, a typical week, or a typical day "
        "(auto: log up to 31 days, else week)",
    )
    p.add_argument(
        "--wait-threshold",
        type=_nonneg,
        default=5.0,
        help="seconds of wait past which every eligible agent is taken as busy",
    )
    p.add_argument("--replications", type=_replications, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument("--schema", action="store_true", help="print the call-log JSON Schema and exit")
    p.set_defaults(func=cmd_fit)

    p = subparsers.add_parser("forecast", help="forecast calls and handle time per interval")
    p.add_argument("calls", help="call log CSV")
    p.add_argument("--horizon", type=_days, default=14, help="days ahead: 14d, 2w (default 14d)")
    p.add_argument("--out", required=True, help="directory for forecast.csv, forecast.json")
    p.add_argument("--interval", type=int, choices=(15, 30, 60), default=30, help="minutes")
    p.add_argument("--holidays", help="file of YYYY-MM-DD dates, one per line")
    p.add_argument(
        "--backtest", action="store_true", help="hold out the last days; WAPE vs seasonal naive"
    )
    p.add_argument("--holdout", type=_days, default=14, help="days held out by --backtest")
    _log_args(p)
    p.add_argument("--no-charts", action="store_true", help="skip the PNG chart")
    p.set_defaults(func=cmd_forecast)

    p = subparsers.add_parser("schedule", help="shifts covering requirements, checked in the twin")
    p.add_argument("--forecast", help="forecast.csv (ivr forecast): requirements by Erlang A")
    p.add_argument("--requirements", help="staffing.csv (ivr staff): agents per interval, group")
    p.add_argument("--scenario", required=True, help="scenario whose callers the twin runs")
    p.add_argument("--shifts", required=True, help="shift rules YAML (scenarios/shifts/)")
    p.add_argument("--out", required=True, help="directory for schedule.csv and the rest")
    p.add_argument("--service-level", type=probability, default=0.8)
    p.add_argument("--within", type=_nonneg, default=20.0, help="seconds")
    p.add_argument("--max-abandon", type=probability, default=None)
    p.add_argument("--time-limit", type=_positive, default=None, help="solver seconds")
    p.add_argument("--budget", type=_nonneg, default=math.inf, help="extra cost for mending")
    p.add_argument("--rounds", type=_count, default=3, help="simulate-and-mend rounds")
    p.add_argument("--replications", type=_replications, default=5)
    p.add_argument("--workers", type=_count, default=None, help="processes")
    p.add_argument("--no-check", action="store_true", help="skip the twin check")
    p.add_argument("--no-charts", action="store_true", help="skip the coverage chart")
    p.set_defaults(func=cmd_schedule)
