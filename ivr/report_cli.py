"""``ivr report`` (the live KPIs of a date range) and ``ivr nlu corrections`` (the calls
whose intent an agent corrected, as labelled examples)."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from ivr.report import BY, CallFact, as_csv, as_text, collect, corrections, day_range, report


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("report", help="live KPIs of a date range, from the store",
                       description="Offered, answered, abandoned, service level, ASA, AHT, "
                                   "transfer and misroute rates, FCR, containment, CSAT and "
                                   "CES of the calls that started in the date range, with "
                                   "their definitions.")
    _range(p)
    p.add_argument("--by", choices=BY, help="one row per queue, intent or flow")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object")
    out.add_argument("--csv", action="store_true", help="CSV, one row per group")
    p.set_defaults(func=_report)


def add_corrections(nlu_commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = nlu_commands.add_parser("corrections", help="calls whose intent an agent corrected, "
                                                    "as text,category CSV")
    _range(c)
    c.add_argument("-o", "--output", type=Path, help="CSV file (default: standard output)")
    c.set_defaults(func=_corrections)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _range(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="first", type=_date, help="first day (default today)")
    p.add_argument("--to", dest="last", type=_date, help="last day, included (default: --from)")
    p.add_argument("--data-dir", type=Path, help="folder of the SQLite store (IVR_DATA_DIR)")
    p.add_argument("--flows", dest="flows_dir", type=Path,
                   help="flows folder, for the routing policy and time zone (IVR_FLOWS_DIR)")


def _load(args: argparse.Namespace) -> tuple[list[CallFact], list[CallFact], Any, tuple[str, str]]:
    from ivr.live import stores
    from ivr.live.routing import routing_policy
    from ivr.web.settings import Settings

    settings = Settings.from_env(data_dir=args.data_dir, flows_dir=args.flows_dir)
    store = stores.open_existing(settings)
    tz = _timezone(settings.flows_dir)
    first = args.first or dt.datetime.now(ZoneInfo(tz)).date()
    last = args.last or first
    policy = routing_policy(settings.flows_dir, {})
    state = stores.routing_state(store, policy)
    floor = stores.open_floor_log(store)
    start, end = day_range(first, last, tz)
    later = end + dt.timedelta(days=policy.floor.fcr_repeat_days)
    every = collect(store, state.decisions, floor, policy, start, later)
    facts = [f for f in every if f.started_at < end.timestamp()]
    return facts, every, policy, (first.isoformat(), last.isoformat())


def _timezone(flows_dir: Path) -> str:
    """The default flow's time zone (read without loading the flows), else UTC."""
    zones = []
    for path in sorted(flows_dir.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and data.get("timezone"):
            zones.append((not data.get("default"), str(data["timezone"])))
    return sorted(zones)[0][1] if zones else "UTC"


def _bad_range(args: argparse.Namespace) -> bool:
    if args.first and args.last and args.last < args.first:
        print(f"error: --to {args.last} is before --from {args.first}", file=sys.stderr)
        return True
    return False


def _report(args: argparse.Namespace) -> int:
    if _bad_range(args):
        return 2
    facts, every, policy, period = _load(args)
    result = report(facts, every, policy, by=args.by, period=period)
    if args.json:
        print(json.dumps(result, indent=2))
    elif args.csv:
        sys.stdout.write(as_csv(result))
    else:
        sys.stdout.write(as_text(result))
    return 0


def _corrections(args: argparse.Namespace) -> int:
    if _bad_range(args):
        return 2
    facts, _, _, _ = _load(args)
    rows = corrections(facts)
    out = args.output.open("w", newline="", encoding="utf-8") if args.output else sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["text", "category"])
    writer.writerows(rows)
    if args.output:
        out.close()
        print(f"wrote {args.output} ({len(rows)} corrected calls)", file=sys.stderr)
    return 0
