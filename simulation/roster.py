"""Which agents exist, with which skills, and when each is logged in."""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulation.scenario import Scenario

__all__ = ["RosterAgent", "build_roster"]


@dataclass(frozen=True, slots=True)
class RosterAgent:
    """One staffed agent: group, skills (level 1-5) and logged-in spans (seconds)."""

    index: int
    group: int
    skills: dict[str, int]
    spans: tuple[tuple[float, float], ...]


def _spans_for(
    k: int,
    counts: list[int] | None,
    count: int,
    width: float,
    horizon: float,
    start: float,
    end: float,
) -> list[tuple[float, float]]:
    if counts is None:
        on = [(0.0, horizon)] if k < count else []
    else:
        on = []
        for j, c in enumerate(counts):
            if k < c:
                a, b = j * width, min((j + 1) * width, horizon)
                if on and on[-1][1] == a:
                    on[-1] = (on[-1][0], b)
                else:
                    on.append((a, b))
    out = []
    for a, b in on:
        a, b = max(a, start), min(b, end)
        if b > a:
            out.append((a, b))
    if out and out[-1][1] >= horizon:  # the last span runs until the queue empties
        out[-1] = (out[-1][0], math.inf)
    return out


def build_roster(scenario: Scenario) -> list[RosterAgent]:
    """Every agent any interval needs, with the spans it is logged in."""
    width = scenario.interval_seconds
    horizon = scenario.horizon_seconds
    roster: list[RosterAgent] = []
    for g, group in enumerate(scenario.agents):
        counts = group.counts_per_interval
        most = max(counts) if counts is not None else group.count
        start = group.shift.start_hour * 3600.0
        end = group.shift.end_hour * 3600.0
        for k in range(most):
            spans = _spans_for(k, counts, group.count, width, horizon, start, end)
            if spans:
                roster.append(RosterAgent(len(roster), g, group.skill_levels, tuple(spans)))
    return roster
