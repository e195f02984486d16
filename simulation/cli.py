"""``ivr simulate``, ``ivr staff`` and ``ivr erlang``: registered on the main ``ivr`` parser.

``ivr/cli.py`` calls :func:`add_commands` with its subparsers; each command's
``func`` takes the parsed arguments and returns an exit code.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from pathlib import Path
from typing import Any, TextIO

import yaml

from ivr.argtypes import (
    int_at_least,
    non_negative_float,
    non_negative_int,
    output_dir,
    positive_float,
    positive_int,
    probability,
)
from simulation.errors import SimulationError

__all__ = ["add_commands", "summary_document"]

SUMMARY_KEYS = (
    "offered",
    "answered",
    "abandoned",
    "abandon_rate",
    "service_level",
    "asa_seconds",
    "p_wait",
    "aht_seconds",
    "occupancy",
    "transfer_rate",
    "containment",
)
INTERVAL_KEYS = (
    "offered",
    "answered",
    "abandoned",
    "service_level",
    "asa_seconds",
    "aht_seconds",
    "occupancy",
    "transfer_rate",
    "containment",
    "abandon_rate",
    "p_wait",
    "agents",
)


class _Progress:
    """A one-line progress bar on standard error, drawn only on a terminal: a redirected
    log gets no ``\\r`` frames."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled and _is_tty(self.stream)

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        width = 30
        fill = int(width * done / max(total, 1))
        self.stream.write(f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total}")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def summary_document(result) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The ``summary.json`` content of a run: every KPI with mean and 95% CI, and definitions."""
    from simulation.kpis import KPI_DEFINITIONS

    sc = result.scenario
    doc: dict[str, Any] = {}
    for key, est in result.summary.items():
        doc[key] = {"mean": est["mean"], "ci_low": est["ci_low"], "ci_high": est["ci_high"]}
    doc["definitions"] = {k: v for k, v in KPI_DEFINITIONS.items() if k in doc}
    for by, classes in result.breakdown.items():
        doc[f"by_{by}"] = {
            c: {k: {kk: e[kk] for kk in ("mean", "ci_low", "ci_high")} for k, e in kpis.items()}
            for c, kpis in classes.items()
        }
    doc["warnings"] = list(result.warnings)
    doc["run"] = {
        "scenario": sc.source,
        "replications": len(result.replications),
        "seed": sc.seed,
        "service_level_seconds": list(sc.service_level_thresholds),
        "duration_hours": sc.duration_hours,
        "warmup_minutes": sc.warmup_minutes,
        "confidence_level": 0.95,
        "calls_simulated": result.calls,
        "wall_seconds": round(result.wall_seconds, 3),
    }
    return _clean(doc)


def _fmt(key: str, v: float) -> str:
    if math.isnan(v):
        return "-"
    if key in ("offered", "answered", "abandoned", "offered_to_queue", "unserved", "blocked"):
        return f"{v:,.0f}"
    if key.endswith("_seconds"):
        return f"{v:.1f} s"
    if key in ("agent_hours", "overtime_hours"):
        return f"{v:,.1f}"
    return f"{v:.1%}"


def _summary_keys(result) -> list[str]:  # type: ignore[no-untyped-def]
    """The table's KPIs: the usual ones, each service-level threshold, and what went wrong."""
    keys = list(SUMMARY_KEYS)
    sl = [k for k in result.summary if k.startswith("service_level_") and k.endswith("s")]
    keys[keys.index("service_level") + 1 : keys.index("service_level") + 1] = sl
    for k in ("unserved", "blocked", "overtime_hours"):
        if result.summary.get(k, {}).get("mean", 0.0):
            keys.append(k)
    return keys


def _print_table(result, out: TextIO) -> None:  # type: ignore[no-untyped-def]
    out.write(f"{'KPI':<20}{'mean':>12}{'95% CI':>26}\n")
    for key in _summary_keys(result):
        e = result.summary[key]
        ci = f"[{_fmt(key, e['ci_low'])}, {_fmt(key, e['ci_high'])}]"
        out.write(f"{key:<20}{_fmt(key, e['mean']):>12}{ci:>26}\n")
    cols = ("offered", "service_level", "asa_seconds", "abandon_rate")
    for by, classes in result.breakdown.items():
        out.write(f"\nby {by:<17}" + "".join(f"{c:>14}" for c in cols) + "\n")
        for name, kpis in classes.items():
            cells = "".join(f"{_fmt(c, kpis[c]['mean']):>14}" for c in cols)
            out.write(f"  {str(name)[:18]:<18}{cells}\n")


def _write_intervals(result, path: Path) -> None:  # type: ignore[no-untyped-def]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        head = ["interval_start"]
        for k in INTERVAL_KEYS:
            head += [k, f"{k}_ci_low", f"{k}_ci_high"]
        w.writerow(head)
        for row in result.intervals:
            start = row["interval_start_seconds"]["mean"]
            line: list[Any] = [f"{int(start // 3600):02d}:{int(start % 3600 // 60):02d}"]
            for k in INTERVAL_KEYS:
                e = row[k]
                line += [_num(e["mean"]), _num(e["ci_low"]), _num(e["ci_high"])]
            w.writerow(line)


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def _load(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from simulation.scenario import load_scenario

    sc = load_scenario(args.scenario)
    _refuse_empty(sc, need_agents=args.func is cmd_simulate)
    update: dict[str, Any] = {}
    if getattr(args, "replications", None) is not None:
        update["replications"] = args.replications
    if getattr(args, "seed", None) is not None:
        update["seed"] = args.seed
    return sc.model_copy(update=update) if update else sc


def _make_out(out: Path | None) -> None:
    """Create the output folder before any work, so a bad path fails in a second, not
    after the simulation."""
    if out is None:
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SimulationError(f"--out {out}: cannot create the folder ({exc.strerror})") from None


def _refuse_empty(sc, need_agents: bool) -> None:  # type: ignore[no-untyped-def]
    """A scenario where no call arrives (or, to simulate, no agent ever works) is refused
    with a clear error rather than run into a table of zeros."""
    from simulation.errors import ScenarioError

    arr = sc.arrivals
    rates = [arr.rate_per_hour] if arr.rate_per_hour is not None else arr.rates_per_hour
    if rates is not None and not any(r > 0 for r in rates):
        raise ScenarioError(
            sc.source, "arrivals", "no call ever arrives (every rate is 0): nothing to simulate"
        )
    if need_agents and not any(g.may_staff for g in sc.agents):  # counts, tables, rosters
        raise ScenarioError(
            sc.source,
            "agents",
            "no agent is ever staffed (every group has count 0), so every call would go "
            "unanswered; give a count, or let `ivr staff` find one",
        )


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a scenario; print the summary; write summary.json, intervals.csv and charts.

    A closed standard output (``ivr simulate ... | head``) ends the command quietly.
    """
    try:
        return _simulate(args)
    except BrokenPipeError:
        import os

        # the reader left: point stdout at devnull so that the interpreter's final flush
        # does not raise again, and end as a piped command does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _simulate(args: argparse.Namespace) -> int:
    from simulation.runner import run_scenario
    from simulation.scenario import scenario_json_schema

    if args.schema:
        sys.stdout.write(scenario_json_schema() + "\n")
        return 0
    if not args.scenario:
        sys.stderr.write("ivr simulate: a SCENARIO file is needed\n")
        return 2
    try:
        _make_out(args.out)
        sc = _load(args)
        progress = _Progress("simulating", enabled=not args.quiet and not args.json)
        result = run_scenario(
            sc, workers=args.workers, progress=progress, by_intent=len(sc.intent_list) > 1
        )
    except SimulationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    doc = summary_document(result)
    for w in result.warnings:
        sys.stderr.write(f"warning: {w}\n")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        _write_intervals(result, out / "intervals.csv")
        if not args.no_charts:
            try:
                from simulation.charts import write_charts

                write_charts(result, out, target=args.service_level)
            except ImportError:
                sys.stderr.write("note: matplotlib is not installed; charts skipped\n")
    if args.json:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_table(result, sys.stdout)
        sys.stdout.write(
            f"{result.calls:,} calls, {len(result.replications)} replications, "
            f"{result.wall_seconds:.1f} s" + (f"; written to {args.out}" if args.out else "") + "\n"
        )
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    """Find the fewest agents per interval and group; print and write the staffing table."""
    from simulation.staffing import Targets, find_staffing

    try:
        _make_out(args.out)
        sc = _load(args)
        targets = Targets(args.service_level, args.within, args.max_abandon)
        progress = _Progress("staffing", enabled=not args.quiet and not args.json)
        plan = find_staffing(
            sc, targets, max_iterations=args.max_iterations, workers=args.workers, progress=progress
        )
        if progress.enabled and plan.iterations < args.max_iterations:
            progress.stream.write("\n")  # converged before the last round: end the bar's line
    except SimulationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    rows = plan.rows()
    doc = {
        "targets": {
            "service_level": targets.service_level,
            "within_seconds": targets.within_seconds,
            "max_abandon": targets.max_abandon,
        },
        "converged": plan.converged,
        "iterations": plan.iterations,
        "agent_hours": plan.agent_hours,
        "cost": plan.cost,
        "intervals_meeting_targets": plan.cells_meeting_targets[0],
        "intervals_with_calls": plan.cells_meeting_targets[1],
        "notes": plan.notes,
        "rows": rows,
    }
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "staffing.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        (out / "staffing.json").write_text(
            json.dumps(_clean(doc), indent=2) + "\n", encoding="utf-8"
        )
        staffed = plan.staffed_scenario(out).model_dump(mode="json", exclude_none=True)
        (out / "staffed_scenario.yaml").write_text(
            yaml.safe_dump(staffed, sort_keys=False), encoding="utf-8"
        )
        try:
            from simulation.charts import write_staffing_chart

            write_staffing_chart(plan, out / "staffing.png")
        except ImportError:
            sys.stderr.write("note: matplotlib is not installed; staffing.png skipped\n")
    if args.json:
        sys.stdout.write(json.dumps(_clean(doc), indent=2) + "\n")
        return 0 if plan.converged else 1
    o = sys.stdout
    erlang = "Erlang A" if sc.patience is not None else "Erlang C"
    o.write(
        f"{'interval':<9}{'group':<14}{'calls/h':>8}{'load (Erl)':>11}{erlang + ' agents':>16}"
        f"{'simulated agents':>18}{'SL':>8}{'abandon':>9}\n"
    )
    for r in rows:
        s = float(r["interval_start_seconds"])
        o.write(
            f"{int(s // 3600):02d}:{int(s % 3600 // 60):02d}    {str(r['group'])[:13]:<14}"
            f"{float(r['calls_per_hour']):>8.0f}{float(r['offered_load_erlangs']):>11.1f}"
            f"{r['erlang_agents']:>16}{r['agents']:>18}"
            f"{_fmt('sl', float(r['service_level'])):>8}{_fmt('ab', float(r['abandon_rate'])):>9}\n"
        )
    met, busy = plan.cells_meeting_targets
    o.write(
        f"overall: {plan.agent_hours:,.1f} agent-hours, cost {plan.cost:,.2f}; {met} of {busy} "
        f"intervals meet the targets; {'converged' if plan.converged else 'NOT converged'} "
        f"after {plan.iterations} simulation(s)\n"
    )
    for note in plan.notes:
        o.write(f"note: {note}\n")
    return 0 if plan.converged else 1


def cmd_erlang(args: argparse.Namespace) -> int:
    """Erlang C / Erlang A table for a range of head counts, and the fewest meeting targets."""
    from simulation.erlang import agents_for_targets, queue_metrics

    try:
        need = agents_for_targets(
            args.calls_per_hour,
            args.aht,
            args.service_level,
            args.within,
            max_abandon=args.max_abandon if args.patience else None,
            patience_seconds=args.patience,
        )
        if args.agents:
            ns = args.agents
        else:
            ns = [n for n in range(max(1, need - 3), need + 4)]
        rows = [
            queue_metrics(n, args.calls_per_hour, args.aht, args.within, args.patience).as_dict()
            for n in ns
        ]
    except SimulationError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    model = "Erlang A (M/M/c+M)" if args.patience else "Erlang C (M/M/c)"
    if args.json:
        sys.stdout.write(
            json.dumps(_clean({"model": model, "required_agents": need, "rows": rows}), indent=2)
            + "\n"
        )
        return 0
    o = sys.stdout
    load = args.calls_per_hour * args.aht / 3600.0
    o.write(
        f"{model}: {args.calls_per_hour:g} calls/h, AHT {args.aht:g} s, load {load:.2f} Erlangs\n"
    )
    o.write(f"{'agents':>7}{'P(wait)':>10}{'SL':>9}{'ASA':>10}{'aband.':>9}{'occup.':>9}\n")
    for r in rows:
        mark = " <" if r["agents"] == need else ""
        if not math.isfinite(r["asa_seconds"]):
            o.write(
                f"{r['agents']:>7}   overloaded (load {load:.2f} >= {r['agents']} agents): "
                f"the queue grows without end{mark}\n"
            )
            continue
        o.write(
            f"{r['agents']:>7}{r['p_wait']:>10.1%}{r['service_level']:>9.1%}{r['asa_seconds']:>9.1f}s"
            f"{r['abandon_rate']:>9.1%}{r['occupancy']:>9.1%}{mark}\n"
        )
    o.write(
        f"fewest agents for {args.service_level:.0%} within {args.within:g} s"
        + (
            f" and at most {args.max_abandon:.0%} abandoning"
            if args.patience and args.max_abandon is not None
            else ""
        )
        + f": {need}\n"
    )
    return 0


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``simulate``, ``staff`` and ``erlang`` on the ``ivr`` parser."""
    p = subparsers.add_parser(
        "simulate", help="simulate a staffing scenario; KPIs with 95%% confidence intervals"
    )
    p.add_argument("scenario", nargs="?", help="scenario YAML file")
    p.add_argument(
        "--out", type=output_dir,
        help="folder for summary.json, intervals.csv and charts (created if missing)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary JSON instead of the table"
    )
    _add_run_flags(p)
    p.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    p.add_argument(
        "--service-level", type=probability, default=0.8,
        help="service-level target drawn on service_level.png (0 to 1; default 0.8)",
    )
    p.add_argument("--schema", action="store_true", help="print the scenario JSON Schema and exit")
    p.set_defaults(func=cmd_simulate)

    p = subparsers.add_parser(
        "staff", help="fewest agents per interval and group meeting the targets"
    )
    p.add_argument("scenario", help="scenario YAML file")
    _add_target_flags(p)
    p.add_argument(
        "--out", type=output_dir,
        help="folder for staffing.csv, staffing.json, staffing.png and staffed_scenario.yaml "
        "(created if missing)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the staffing JSON instead of the table"
    )
    p.add_argument(
        "--max-iterations", type=positive_int, default=12, help="simulate-and-correct rounds"
    )
    _add_run_flags(p)
    p.set_defaults(func=cmd_staff)

    p = subparsers.add_parser("erlang", help="Erlang C / Erlang A for one queue")
    p.add_argument("calls_per_hour", type=positive_float, help="arrival rate, calls per hour")
    p.add_argument("aht", type=positive_float, help="mean handle time, seconds")
    p.add_argument("--agents", type=positive_int, nargs="+", help="head counts to tabulate")
    p.add_argument(
        "--patience", type=positive_float, default=None,
        help="mean patience, seconds (Erlang A)",
    )
    _add_target_flags(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_erlang)

    from simulation.planning_cli import add_planning_commands

    add_planning_commands(subparsers)


def _add_target_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--service-level", type=probability, default=0.8,
        help="target share answered within --within (0 to 1; default 0.8)",
    )
    p.add_argument(
        "--within", type=non_negative_float, default=20.0,
        help="service-level threshold, seconds (default 20)",
    )
    p.add_argument(
        "--max-abandon", type=probability, default=None,
        help="highest abandonment rate (0 to 1)",
    )


def _add_run_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers", type=positive_int, default=None, help="processes (default: all cores)"
    )
    p.add_argument(
        "--replications", type=int_at_least(2), default=None,
        help="override the scenario's replications (at least 2, for confidence intervals)",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=None, help="override the scenario's seed"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
