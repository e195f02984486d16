"""Which agents exist, with which skills, and when each is logged in.

A group's staffing is a head count, a step function of head counts (per scenario
interval, or a staffing table with its own steps), or a roster of login/logout times
per agent. Agent ``k`` of a step function is logged in wherever the level exceeds
``k``; a fractional level ``n + f`` logs agent ``n`` in for the first share ``f``
of the step, so agent-hours are exactly the table's. A roster row's ``breaks``
(``HH:MM-HH:MM`` clock times) cut its span; a group's ``shrinkage`` scales head counts,
or leaves out that share of the roster's rows (shift by shift, see ``_shrink``).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _break_spans(
    text: str, login: float, logout: float, clock0: float
) -> list[tuple[float, float]]:
    """``HH:MM-HH:MM ...`` clock times as spans, each the first such time at or after the
    login (``clock0``: the login's seconds since its midnight); ValueError if malformed."""
    out = []
    start = login
    for item in text.split():
        a, sep, b = item.partition("-")
        if not sep:
            raise ValueError(f"{item!r} is not HH:MM-HH:MM")
        clocks = []
        for part in (a, b):
            m = _CLOCK.match(part)
            if not m:
                raise ValueError(f"{part!r} in {item!r} is not a time of day HH:MM")
            clocks.append(int(m.group(1)) * 3600.0 + int(m.group(2)) * 60.0)
        at = login + (clocks[0] - clock0) % 86400.0
        end = at + (clocks[1] - clocks[0]) % 86400.0
        if at < start or end >= logout or end <= at:
            raise ValueError(f"break {item} is not inside the shift, after the one before it")
        out.append((at, end))
        start = end
    return out


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _roster_rows(
    sc: Scenario, g: AgentGroup, field: str, origin: Origin
) -> list[tuple[float, str, list[tuple[float, float]]]]:
    """(login, agent, logged-in spans) per roster row: the row's login to its logout,
    less its breaks."""
    rows: list[tuple[int, dict[str, Any]]]
    if isinstance(g.roster, list):
        rows = [
            (k, {"agent_id": e.agent, "login": e.login, "logout": e.logout, "breaks": e.breaks})
            for k, e in enumerate(g.roster)
        ]
        where = f"{sc.source}: {field}"
    else:
        path = sc.resolve(g.roster)  # type: ignore[arg-type]
        rows = _read_rows(path, ("agent_id", "login", "logout"), g.name)
        where = str(path)
    out = []
    for n, row in rows:
        at = f"{where}:{n}" if not isinstance(g.roster, list) else f"{where}.{n}"
        times = []
        for col in ("login", "logout"):
            try:
                times.append(parse_instant(row[col] if row[col] is not None else "", origin))
            except ValueError as exc:
                raise ScenarioError(at, col, str(exc)) from None
        login, logout = times
        if logout <= login:
            raise ScenarioError(at, "logout", "must be after login")
        spans = [(login, logout)]
        breaks = str(row.get("breaks") or "").strip()
        if breaks:
            try:
                cut = _break_spans(breaks, login, logout, _clock_of(row["login"], login, origin))
            except ValueError as exc:
                raise ScenarioError(at, "breaks", str(exc)) from None
            edges = [login, *(t for span in cut for t in span), logout]
            spans = [(edges[k], edges[k + 1]) for k in range(0, len(edges), 2)]
        out.append((login, str(row["agent_id"]).strip(), spans))
    return out


def _clock_of(text: object, seconds: float, origin: Origin) -> float:
    """Seconds since midnight of a login: its own wall clock when ISO 8601, else counted
    from time 0 (and time 0's own clock reading, when the scenario has ``start_at``)."""
    from datetime import datetime

    if isinstance(text, str) and ("T" in text or " " in text.strip()):
        try:
            d = datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        else:
            return d.hour * 3600.0 + d.minute * 60.0 + d.second + d.microsecond / 1e6
    base = origin.at
    offset = base.hour * 3600.0 + base.minute * 60.0 + base.second if base is not None else 0.0
    return (seconds + offset) % 86400.0


def _shrink(rows: list, share: float) -> list:
    """Leave out ``share`` of the roster's rows, shift by shift, so that adding a shift
    changes no other's fate: of the ``n`` rows with the same spans (login, breaks,
    logout), ``floor(n * share + u)`` are left out, ``u`` in [0, 1) from a hash of those
    spans (randomised rounding: the expected share is exact, identical shifts lose their
    share to within one, a lone shift is left out with probability ``share``)."""
    if share <= 0:
        return rows
    same: dict[tuple, list] = {}
    for row in rows:
        same.setdefault(tuple(row[2]), []).append(row)
    kept = []
    for spans, alike in same.items():
        digest = hashlib.blake2b(repr(spans).encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2.0**64
        kept.extend(alike[: len(alike) - math.floor(len(alike) * share + u)])
    return kept


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
        keep = 1.0 - group.shrinkage
        if group.roster is not None:
            by_agent: dict[str, list[tuple[float, float]]] = {}
            rows = _roster_rows(scenario, group, field + ".roster", origin)
            for _, agent, spans in _shrink(rows, group.shrinkage):
                by_agent.setdefault(agent, []).extend(spans)
            named = list(by_agent.items())
        elif group.counts_per_interval is not None or group.staffing_table is not None or keep < 1:
            if group.counts_per_interval is not None or group.staffing_table is not None:
                steps = _table_steps(scenario, group, field + ".staffing_table", origin)
            else:  # a head count, shrunk: a level all day
                steps = [(0.0, horizon, float(group.count))]
            if keep < 1:
                steps = [(a, b, level * keep) for a, b, level in steps]
            most = math.ceil(max((s[2] for s in steps), default=0.0))
            named = [("", _step_spans(steps, k)) for k in range(most)]
        else:
            named = [("", [(0.0, horizon)]) for _ in range(group.count)]
        for name, spans in named:
            clipped = _clip(spans, start, end, horizon)
            if clipped:
                roster.append(RosterAgent(len(roster), gi, skills, clipped, name))
    return roster
