"""The one error root of the simulator, and its specialisations."""

from __future__ import annotations


class SimulationError(Exception):
    """Root of every error the simulator raises on purpose."""


class ScenarioError(SimulationError):
    """A scenario (or a file it points to) is invalid.

    ``file`` and ``field`` name where: ``field`` is a dotted path such as
    ``agents.0.count`` (empty when the whole file is at fault).
    """

    def __init__(self, file: str, field: str, message: str) -> None:
        self.file = file
        self.field = field
        self.message = message
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {message}")

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (type(self), (self.file, self.field, self.message))


class AnalyticError(SimulationError, ValueError):
    """Parameters an analytic queueing formula cannot take (e.g. no agents)."""


class RouterContractError(SimulationError):
    """The router answered something the simulator cannot replay faithfully."""
