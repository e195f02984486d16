"""Which agents exist, with which skills, and when each is logged in.

A group's staffing is a head count, a step function of head counts (per scenario
interval, or a staffing table with its own steps), or a roster of login/logout times
per agent. Agent ``k`` of a step function is logged in wherever the level exceeds
``k``; a fractional level ``n + f`` logs agent ``n`` in for the first share ``f``
of the step, so agent-hours are exactly the table's.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from simulation.errors import ScenarioError
from simulation.scenario import AgentGroup, Scenario
from simulation.times import Origin, parse_instant

__all__ = ["RosterAgent", "build_roster"]


@dataclass(frozen=True, slots=True)
class RosterAgent:
    """One staffed agent: group, skills (level 1-5) and logged-in spans (seconds)."""

    index: int
    group: int
    skills: dict[str, int]
    spans: tuple[tuple[float, float], ...]
    name: str = ""


Steps = list[tuple[float, float, float]]  # (start, end, agents)


def _merge(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _clip(
    spans: list[tuple[float, float]], start: float, end: float, horizon: float
) -> tuple[tuple[float, float], ...]:
    out = []
    for a, b in _merge(spans):
        a, b = max(a, start), min(b, end)
        if b > a and a < horizon:
            out.append((a, b))
    if out and out[-1][1] >= horizon:  # the last span runs until the queue empties
        out[-1] = (out[-1][0], math.inf)
    return tuple(out)


def _step_spans(steps: Steps, k: int) -> list[tuple[float, float]]:
    spans = []
    for a, b, level in steps:
        share = min(1.0, max(0.0, level - k))
        if share > 0:
            spans.append((a, a + share * (b - a)))
    return spans


def _read_rows(path: Path, need: tuple[str, ...], group: str | None) -> list[tuple[int, dict]]:
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(str(path), "", f"cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.DictReader(fh)
        cols = set(reader.fieldnames or ())
        for c in need:
            if c not in cols:
                raise ScenarioError(str(path), c, "column missing")
        rows = list(enumerate(reader, start=2))
    if "group" in cols:
        rows = [(n, r) for n, r in rows if (r.get("group") or "").strip() == (group or "")]
    return rows


def _table_steps(sc: Scenario, g: AgentGroup, field: str, origin: Origin) -> Steps:
    horizon = sc.horizon_seconds
    if g.counts_per_interval is not None:
        w = sc.interval_seconds
        return [
            (j * w, min((j + 1) * w, horizon), float(c))
            for j, c in enumerate(g.counts_per_interval)
        ]
    path = sc.resolve(g.staffing_table)  # type: ignore[arg-type]
    points = []
    for n, row in _read_rows(path, ("interval_start", "agents"), g.name):
        at = f"{path}:{n}"
        try:
            t = parse_instant(row["interval_start"] or "", origin)
        except ValueError as exc:
            raise ScenarioError(at, "interval_start", str(exc)) from None
        try:
            level = float(row["agents"])
        except (TypeError, ValueError):
            raise ScenarioError(at, "agents", f"not a number: {row['agents']!r}") from None
        if not (level >= 0 and math.isfinite(level)):
            raise ScenarioError(at, "agents", f"must be >= 0, got {row['agents']!r}")
        points.append((t, level))
    if not points:
        raise ScenarioError(str(path), "", f"no rows for {field} (group {g.name!r})")
    points.sort()
    ends = [p[0] for p in points[1:]] + [max(horizon, points[-1][0])]
    return [(t, e, lv) for (t, lv), e in zip(points, ends, strict=True) if e > t]


def _roster_spans(
    sc: Scenario, g: AgentGroup, field: str, origin: Origin
) -> dict[str, list[tuple[float, float]]]:
    by_agent: dict[str, list[tuple[float, float]]] = {}
    if isinstance(g.roster, list):
        rows = [
            (k, {"agent_id": e.agent, "login": e.login, "logout": e.logout})
            for k, e in enumerate(g.roster)
        ]
        where = f"{sc.source}: {field}"
    else:
        path = sc.resolve(g.roster)  # type: ignore[arg-type]
        rows = _read_rows(path, ("agent_id", "login", "logout"), g.name)
        where = str(path)
    for n, row in rows:
        at = f"{where}:{n}" if not isinstance(g.roster, list) else f"{where}.{n}"
        times = []
        for col in ("login", "logout"):
            try:
                times.append(parse_instant(row[col] if row[col] is not None else "", origin))
            except ValueError as exc:
                raise ScenarioError(at, col, str(exc)) from None
        if times[1] <= times[0]:
            raise ScenarioError(at, "logout", "must be after login")
        by_agent.setdefault(str(row["agent_id"]).strip(), []).append((times[0], times[1]))
    return by_agent


def build_roster(scenario: Scenario, origin: Origin | None = None) -> list[RosterAgent]:
    """Every agent any interval needs, with the spans it is logged in."""
    origin = origin or Origin(scenario.start_at)
    horizon = scenario.horizon_seconds
    roster: list[RosterAgent] = []
    for gi, group in enumerate(scenario.agents):
        field = f"agents.{gi}"
        start = group.shift.start_hour * 3600.0
        end = group.shift.end_hour * 3600.0
        skills = group.skill_levels
        named: list[tuple[str, list[tuple[float, float]]]]
        if group.roster is not None:
            named = list(_roster_spans(scenario, group, field + ".roster", origin).items())
        elif group.counts_per_interval is not None or group.staffing_table is not None:
            steps = _table_steps(scenario, group, field + ".staffing_table", origin)
            most = math.ceil(max((s[2] for s in steps), default=0.0))
            named = [("", _step_spans(steps, k)) for k in range(most)]
        else:
            named = [("", [(0.0, horizon)]) for _ in range(group.count)]
        for name, spans in named:
            clipped = _clip(spans, start, end, horizon)
            if clipped:
                roster.append(RosterAgent(len(roster), gi, skills, clipped, name))
    return roster
