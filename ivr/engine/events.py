"""What can happen to a call, as data: the engine's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union


@dataclass(frozen=True, slots=True)
class CallerInput:
    """The caller answered a prompt (both None or empty: they said and pressed nothing)."""

    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None  # the speech recognizer's own confidence, 0..1

    @property
    def empty(self) -> bool:
        return not (self.digits or (self.speech and self.speech.strip()))


@dataclass(frozen=True, slots=True)
class RecordingDone:
    """A voicemail recording finished (``url`` None when nothing was recorded)."""

    url: str | None = None
    duration_seconds: int = 0


@dataclass(frozen=True, slots=True)
class LegEnded:
    """The queue or transfer leg ended: Twilio's QueueResult or DialCallStatus."""

    status: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The call is over (Twilio's final CallStatus: completed, busy, failed, ...)."""

    status: str = "completed"


Event = Union[CallerInput, RecordingDone, LegEnded, CallEnded]
