"""What the engine asks the driver to do, as data: the engine's outputs.

The web layer renders these as TwiML; the console and the simulator interpret
them directly. None of them knows about URLs: the driver adds those.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Union


@dataclass(frozen=True, slots=True)
class Say:
    """Speak ``text``; when ``parts`` is given, speak them instead, one after the other,
    each with its own voice and locale (a prompt in two languages)."""

    text: str
    voice: str
    locale: str
    parts: tuple[Say, ...] = ()


@dataclass(frozen=True, slots=True)
class Play:
    url: str
    loop: int = 1


@dataclass(frozen=True, slots=True)
class Gather:
    """Prompt and wait for speech and/or keys (the prompts can be barged in on)."""

    prompts: tuple[Say | Play, ...]
    input: tuple[str, ...]
    timeout_seconds: int
    locale: str
    num_digits: int | None = None
    finish_on_key: str = ""
    hints: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Record:
    """Record a voicemail after the prompt."""

    max_length_seconds: int


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What the IVR learned, handed to the router: who is needed and why."""

    queue: str
    skills: dict[str, int]
    language: str
    priority: int
    context: dict[str, Any] = field(default_factory=dict)
    callback_after_seconds: int | None = None
    reason: str = "flow"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Enqueue:
    """Put the caller in the routing queue."""

    request: RouteRequest


@dataclass(frozen=True, slots=True)
class Dial:
    """Transfer to an outside number, SIP URI or client."""

    number: str
    timeout_seconds: int


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


Action = Union[Say, Play, Gather, Record, Enqueue, Dial, Hangup]
