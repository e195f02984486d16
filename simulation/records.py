"""Flat result records of one replication: one row per call, one per agent span.

KPIs are pure functions over these (see :mod:`simulation.kpis`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AgentSpans", "CallRecords", "Replication"]


@dataclass(frozen=True, slots=True)
class CallRecords:
    """One entry per call (arrays of equal length). Times in seconds from the start.

    ``queued_at`` is when the call left the IVR for the queue (nan if contained);
    ``answered_at``/``abandoned_at`` are nan when it did not happen; ``waited`` is
    True when no eligible agent was free at ``queued_at``; ``handled_seconds`` is
    talk + after-call work over every leg; ``transferred`` counts transfers.
    """

    arrival: np.ndarray
    intent: np.ndarray
    queued_at: np.ndarray
    answered_at: np.ndarray
    abandoned_at: np.ndarray
    waited: np.ndarray
    handled_seconds: np.ndarray
    transferred: np.ndarray
    contained: np.ndarray
    callback: np.ndarray
    blocked: np.ndarray | None = None  # turned away by a closed queue (outage event)
    queue: np.ndarray | None = None  # routed intent of the first leg (its queue)
    priority: np.ndarray | None = None  # the call's priority

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    @property
    def wait(self) -> np.ndarray:
        """Wait before the first answer (answered calls) or before hanging up."""
        end = np.where(np.isnan(self.answered_at), self.abandoned_at, self.answered_at)
        return end - self.queued_at


@dataclass(frozen=True, slots=True)
class AgentSpans:
    """Agent time: busy spans (talk + wrap-up) and logged-in spans, with agent and group."""

    busy_start: np.ndarray
    busy_end: np.ndarray
    busy_agent: np.ndarray
    login_start: np.ndarray
    login_end: np.ndarray
    login_agent: np.ndarray
    agent_group: np.ndarray  # group index of each agent
    # logged-in time past a scheduled logout (finishing the call in hand): part of login spans
    overtime_start: np.ndarray = field(default_factory=lambda: np.zeros(0))
    overtime_end: np.ndarray = field(default_factory=lambda: np.zeros(0))
    overtime_agent: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@dataclass(frozen=True, slots=True)
class Replication:
    """Everything one replication produced."""

    index: int
    calls: CallRecords
    agents: AgentSpans
    horizon: float
    warmup: float
    interval: float
    events: int
    plan: Any = None  # the CallPlan it ran (traffic.CallPlan)
