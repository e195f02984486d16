"""Eligibility, fit score and call order: the policy's arithmetic, as pure functions.

The router, the batch solver, the benchmark's linear-scan baseline and the
tests' brute-force oracle all use these, so they agree by construction on what
"eligible" and "best" mean.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from routing.models import Requirement

Weight = Callable[[str], float]


def is_eligible(skills: Mapping[str, int], languages: frozenset[str], req: Requirement) -> bool:
    """Every required skill at or above its minimum level, and the language if one is required."""
    if req.language is not None and req.language not in languages:
        return False
    for skill, minimum in req.skills:
        if skills.get(skill, 0) < minimum:
            return False
    return True


def fit_score(skills: Mapping[str, int], req: Requirement, weight: Weight) -> float:
    """Sum over the required skills of weight(skill) * the agent's level in it."""
    return float(sum(weight(s) * skills.get(s, 0) for s, _ in req.skills))


def call_order_key(
    priority: int, enqueued_at: float, seq: int, aging_seconds: float | None
) -> tuple[float, float, int]:
    """Sort key of a waiting call: smaller is served first.

    Without aging: priority (higher first), then longest wait. With aging, the
    effective priority is ``priority + waited / aging_seconds``; since every call
    ages at the same rate, ordering by it equals ordering by the static value
    ``enqueued_at - priority * aging_seconds`` (a "virtual enqueue time").
    """
    if aging_seconds is None:
        return (-float(priority), enqueued_at, seq)
    return (enqueued_at - priority * aging_seconds, enqueued_at, seq)


def effective_priority(priority: int, waited: float, aging_seconds: float | None) -> float:
    """Priority after aging (for display and for the batch solver's ranking)."""
    return priority + (waited / aging_seconds if aging_seconds else 0.0)
