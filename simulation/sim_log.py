"""A simulated replication written as a call log (what an ACD would have exported).

The round trip ``simulate -> call log -> ivr fit`` checks the fit against known
parameters. Each answered call's agent is the one whose busy span starts at the
answer; ``ended_at`` is the end of talk (the busy span less the wrap-up).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from simulation.calllog import write_calls
from simulation.records import Replication
from simulation.scenario import Scenario

__all__ = ["replication_rows", "write_replication_log"]


def replication_rows(
    rep: Replication, scenario: Scenario, start: float = 0.0, short_abandon_seconds: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Call-log rows of a replication; times are ``start`` + simulated seconds."""
    calls, spans = rep.calls, rep.agents
    intents = scenario.intent_list
    wrap = scenario.wrap_up_seconds
    order = np.argsort(spans.busy_start, kind="stable")
    b_start, b_end = spans.busy_start[order], spans.busy_end[order]
    b_agent = spans.busy_agent[order]
    groups = spans.agent_group
    for i in range(calls.size):
        if calls.contained[i]:
            continue
        it = intents[int(calls.intent[i])]
        arr, q = float(calls.arrival[i]), float(calls.queued_at[i])
        ans = float(calls.answered_at[i])
        row: dict[str, Any] = {
            "arrival_time": start + arr,
            "queue": it.queue_name,
            "ivr_seconds": q - arr,
            "queued_at": start + q,
            "priority": it.priority,
        }
        if math.isnan(ans):
            gone = float(calls.abandoned_at[i])
            if math.isnan(gone):
                continue  # still waiting when the run ended
            row["ended_at"] = start + gone
            short = gone - q <= short_abandon_seconds
            row["outcome"] = "short_abandon" if short else "abandoned"
        else:
            k = int(np.searchsorted(b_start, ans))
            k = min(k, b_start.size - 1)
            a = int(b_agent[k])
            w = scenario.agents[int(groups[a])].wrap_up_seconds
            w = wrap if w is None else w
            row["answered_at"] = start + ans
            row["ended_at"] = start + float(b_end[k]) - w
            row["wrap_up_seconds"] = w
            row["agent_id"] = f"A{a:04d}"
            row["outcome"] = "transferred" if calls.transferred[i] else "answered"
        yield row


def write_replication_log(
    path: str | Path, rep: Replication, scenario: Scenario, start: float = 0.0
) -> int:
    """Write a replication as a call-log CSV; returns the number of rows."""
    return write_calls(path, replication_rows(rep, scenario, start))
