"""One error root for the IVR package."""

from __future__ import annotations


class IVRError(Exception):
    """Root of every error this package raises on purpose."""


class FlowError(IVRError):
    """A flow file (or a directory of them) is invalid.

    ``problems`` holds one line per problem, each naming file, node and field,
    e.g. ``flows/support.yaml: node 'billing_menu': intents.refund.next: unknown node
    'refunds' (did you mean 'refund'?)``.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems) if self.problems else "invalid flow")


class EngineError(IVRError):
    """The engine was asked to do something its inputs do not allow."""


class StoreError(IVRError):
    """The session store failed or holds inconsistent data."""
