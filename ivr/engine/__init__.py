"""The pure flow engine: ``start`` and ``step`` over immutable sessions.

This package imports neither Flask nor SimPy and reads no clock: the web layer,
the console and the simulator all drive this same code.
"""

from ivr.engine.actions import (
    Action,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Play,
    Record,
    RouteRequest,
    Say,
)
from ivr.engine.core import fail_safe, start, step
from ivr.engine.events import CallEnded, CallerInput, Event, LegEnded, RecordingDone
from ivr.engine.session import Session

__all__ = [
    "Action", "CallEnded", "CallerInput", "Dial", "Enqueue", "Event", "Gather", "Hangup",
    "LegEnded", "Play", "Record", "RecordingDone", "RouteRequest", "Say", "Session",
    "fail_safe", "start", "step",
]
