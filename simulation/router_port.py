"""The narrow interface through which the event loop asks the router for decisions.

The event loop never matches calls to agents itself: every match comes back from
``RouterPort`` methods as ``(call, agent)`` pairs (integer indices of the caller
plan and of the staffed agents). :mod:`simulation.live_router` adapts the
production router (``routing``) to this interface.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["Assignment", "RouterPort"]

Assignment = tuple[int, int]  # (call index, agent index): the agent now talks to the caller


class RouterPort(Protocol):
    """Decisions the simulator needs, in simulated time ``now`` (seconds)."""

    def login(self, agent: int, now: float) -> list[Assignment]:
        """Agent becomes available; may be handed a waiting call at once."""
        ...

    def logout(self, agent: int, now: float) -> None:
        """The agent signs out (end of shift); a call in progress goes on, no new one comes."""
        ...

    def enqueue(self, call: int, intent: int, now: float) -> list[Assignment]:
        """A call (or a transferred call's new leg) asks for an agent able to serve ``intent``."""
        ...

    def complete(self, call: int, agent: int, now: float) -> tuple[list[Assignment], float]:
        """The conversation ended: (calls handed on at once, seconds of wrap-up the router applies).

        With wrap-up, the agent's next call comes from a later ``tick``.
        """
        ...

    def abandon(self, call: int, now: float) -> list[Assignment]:
        """A waiting caller hung up."""
        ...

    def add_call(self, call: int, intent: int) -> None:
        """A call beyond the caller plan (index ``call``) will be enqueued (SimPy processes)."""
        ...

    def next_deadline(self) -> float | None:
        """Earliest time the router wants ``tick`` (relaxation, overflow), if any.

        A port may also have a ``timed`` attribute: False promises that it never sets a
        timer, and the loop then never asks (absent, it is taken as True)."""
        ...

    def tick(self, now: float) -> list[Assignment]:
        """Let time-driven rules fire."""
        ...
