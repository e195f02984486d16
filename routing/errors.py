"""The one exception root of the routing package and its few children."""

from __future__ import annotations


class RoutingError(Exception):
    """Root of every error the router raises."""


class PolicyError(RoutingError):
    """A routing policy file (or dict) is invalid.

    ``problems`` holds one line per problem, each naming file, field and value
    and saying how to fix it, e.g.
    ``flows/routing.yaml: queues.billing.relax[1].after_seconds: must be >= the previous
    step (30), got 10``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} in routing policy"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class UnknownAgentError(RoutingError, KeyError):
    """An operation named an agent id the router does not know."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the plain message
        return str(self.args[0]) if self.args else "unknown agent"


class UnknownCallError(RoutingError, KeyError):
    """An operation named a call id the router does not know (or no longer holds)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown call"


class InvalidTransitionError(RoutingError):
    """An operation is not allowed in the current state of an agent or call."""


class InvalidRecordError(RoutingError, ValueError):
    """An agent or call record has a bad field (level out of 1-5, capacity < 1, ...)."""


class UnknownQueueError(RoutingError, KeyError):
    """A call named a queue the policy does not declare."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown queue"
