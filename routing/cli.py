"""``ivr route ...`` commands, and a human-readable form of decisions."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, TextIO

from routing.errors import PolicyError
from routing.models import Decision, DecisionKind
from routing.policy import load_policy


def _seconds(t: float) -> str:
    return f"t={t:g}s"


def format_decision(d: Decision, when: Callable[[float], str] = _seconds) -> str:
    """A decision as a few readable lines (for ``ivr route explain``); ``when`` formats its
    time (the live layer passes wall-clock times, printed as dates)."""
    head = f"#{d.seq} {when(d.time)} call {d.call_id} [{d.queue}] {d.kind.value}"
    if d.agent_id:
        head += f" {'to' if d.kind is DecisionKind.OFFERED else 'by'} agent {d.agent_id}"
    head += f" ({d.trigger})"
    lines = [head]
    if d.kind in (DecisionKind.OFFERED, DecisionKind.QUEUED):
        lines.append(f"  needs: {d.requirement}; {d.step_label}")
        lines.append(f"  waited {d.waited:g}s, effective priority {d.priority:.2f}")
    if d.kind is DecisionKind.OFFERED:
        lines.append(f"  eligible free agents: {d.eligible_count}")
        for i, c in enumerate(d.candidates):
            mark = (
                "chosen   "
                if c.agent_id == d.agent_id
                else ("runner-up" if i == 1 else "         ")
            )
            lines.append(
                f"    {mark} {c.agent_id}: score {c.score:g}, idle since "
                f"{when(c.idle_since).removeprefix('t=')}"
            )
        if d.runner_up_id is None:
            lines.append("    (no runner-up)")
    if d.excluded:
        lines.append(f"  not offered again to: {', '.join(d.excluded)}")
    if d.note:
        lines.append(f"  note: {d.note}")
    return "\n".join(lines)


def _check_policy(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        policy = load_policy(args.path)
    except PolicyError as err:
        for line in err.problems:
            print(line, file=out)
        return 1
    print(
        f"{args.path}: ok ({len(policy.queues)} queues: {', '.join(sorted(policy.queues))})",
        file=out,
    )
    return 0


def add_commands(subparsers: argparse._SubParsersAction[Any]) -> argparse._SubParsersAction[Any]:
    """Register ``route`` (with ``check-policy PATH``) on the top-level ``ivr`` parser.

    Each leaf sets ``func(args) -> int`` (the exit code) via ``set_defaults``.
    Returns the ``route`` sub-commands, for layers that add their own (``explain``).
    """
    route = subparsers.add_parser("route", help="skills-based routing tools")
    sub = route.add_subparsers(dest="route_command", required=True)
    check = sub.add_parser(
        "check-policy", help="validate a routing policy file (exit 0 ok, 1 problems)"
    )
    check.add_argument("path", help="policy YAML, e.g. flows/routing.yaml")
    check.set_defaults(func=_check_policy)
    return sub


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m routing.cli route check-policy PATH``."""
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
