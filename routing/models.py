"""The nouns of routing: agents, calls, requirements and decision records.

Agents and calls are mutable records owned by a :class:`routing.router.Router`;
read them, but change them only through the router. Decisions are frozen,
plain records (``as_dict()``/``from_dict()``) meant to be stored and printed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple

from routing.errors import InvalidRecordError

MIN_LEVEL = 1
MAX_LEVEL = 5


class AgentState(str, Enum):
    """What an agent is doing; ``state_since`` on the agent says since when."""

    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"
    BUSY = "busy"
    WRAP_UP = "wrap_up"
    BREAK = "break"


#: States an agent chooses for themself (the rest follow from their calls).
PRESENCE_STATES = (AgentState.OFFLINE, AgentState.AVAILABLE, AgentState.BREAK)


class CallState(str, Enum):
    """Where a call is in its life inside the router."""

    WAITING = "waiting"
    RESERVED = "reserved"
    CONNECTED = "connected"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


_WAITING = CallState.WAITING
_new_object = object.__new__


class SlotState(str, Enum):
    """What one of an agent's capacity slots holds."""

    RESERVED = "reserved"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


def _check_skills(owner: str, skills: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for skill, level in skills.items():
        if not isinstance(skill, str) or not skill:
            raise InvalidRecordError(
                f"{owner}: skill names must be non-empty strings, got {skill!r}"
            )
        if (
            isinstance(level, bool)
            or not isinstance(level, int)
            or not MIN_LEVEL <= level <= MAX_LEVEL
        ):
            raise InvalidRecordError(
                f"{owner}: skills.{skill} = {level!r}: levels are integers "
                f"{MIN_LEVEL}-{MAX_LEVEL}; use {MIN_LEVEL} for 'any level'"
            )
        out[skill] = level
    return out


@dataclass(slots=True, eq=False)
class Agent:
    """A person who takes calls.

    ``presence`` is what the agent chose (offline, available, break); ``state``
    is derived from presence and the agent's ``slots`` (call id -> slot state),
    at most ``capacity`` of them. ``idle_since`` is when the agent last became
    free to take a call (ties between equal scores go to the longest idle).
    ``wrap_up_seconds`` None means the policy default.
    """

    id: str
    skills: dict[str, int]
    languages: frozenset[str] = frozenset()
    name: str = ""
    capacity: int = 1
    wrap_up_seconds: float | None = None
    presence: AgentState = AgentState.OFFLINE
    state: AgentState = AgentState.OFFLINE
    state_since: float = 0.0
    idle_since: float = 0.0
    slots: dict[str, SlotState] = field(default_factory=dict)
    wrap_until: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.skills = _check_skills(f"agent {self.id}", self.skills)
        self.languages = frozenset(self.languages)
        if (
            isinstance(self.capacity, bool)
            or not isinstance(self.capacity, int)
            or self.capacity < 1
        ):
            raise InvalidRecordError(
                f"agent {self.id}: capacity = {self.capacity!r}: must be an integer >= 1 (voice: 1)"
            )
        if self.wrap_up_seconds is not None and self.wrap_up_seconds < 0:
            raise InvalidRecordError(
                f"agent {self.id}: wrap_up_seconds = {self.wrap_up_seconds!r}: must be >= 0"
            )
        self.presence = AgentState(self.presence)
        if self.presence not in PRESENCE_STATES:
            raise InvalidRecordError(
                f"agent {self.id}: presence = {self.presence.value!r}: must be one of "
                + ", ".join(s.value for s in PRESENCE_STATES)
            )
        self.state = AgentState(self.state)

    @property
    def load(self) -> int:
        """Slots in use: reserved, talking or wrapping up."""
        return len(self.slots)

    @property
    def routable(self) -> bool:
        """True when the agent may be offered one more call now."""
        return self.presence is AgentState.AVAILABLE and len(self.slots) < self.capacity

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "skills": dict(self.skills),
            "languages": sorted(self.languages),
            "capacity": self.capacity,
            "wrap_up_seconds": self.wrap_up_seconds,
            "presence": self.presence.value,
            "state": self.state.value,
            "state_since": self.state_since,
            "idle_since": self.idle_since,
            "slots": {k: v.value for k, v in self.slots.items()},
            "wrap_until": dict(self.wrap_until),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Agent:
        return cls(
            id=d["id"],
            name=d.get("name", ""),
            skills=dict(d["skills"]),
            languages=frozenset(d.get("languages", ())),
            capacity=d.get("capacity", 1),
            wrap_up_seconds=d.get("wrap_up_seconds"),
            presence=AgentState(d.get("presence", "offline")),
            state=AgentState(d.get("state", d.get("presence", "offline"))),
            state_since=d.get("state_since", 0.0),
            idle_since=d.get("idle_since", 0.0),
            slots={k: SlotState(v) for k, v in d.get("slots", {}).items()},
            wrap_until=dict(d.get("wrap_until", {})),
        )


@dataclass(slots=True, eq=False)
class Call:
    """A caller waiting for (or talking to) an agent.

    Built from the IVR's ``route`` request: ``queue``, ``skills`` (skill ->
    minimum level; empty means the queue's default skills), ``language`` (None:
    the queue's language, if any), ``priority`` (higher is more urgent) and
    ``context``. The router fills in the rest.
    """

    id: str
    queue: str
    skills: dict[str, int] = field(default_factory=dict)
    language: str | None = None
    priority: int = 0
    context: dict[str, Any] = field(default_factory=dict)
    state: CallState = CallState.WAITING
    enqueued_at: float = 0.0
    queue_entered_at: float = 0.0
    step: int = 0
    seq: int = 0
    agent_id: str | None = None
    excluded: set[str] = field(default_factory=set)
    offered_at: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None

    def __post_init__(self) -> None:
        skills = self.skills
        # (one is made per call: the common cases - no skills, an int priority, a
        # CallState - skip the general checks, with the same outcome)
        self.skills = (
            {} if type(skills) is dict and not skills else _check_skills(f"call {self.id}", skills)
        )
        if type(self.priority) is not int and (
            isinstance(self.priority, bool) or not isinstance(self.priority, int)
        ):
            raise InvalidRecordError(
                f"call {self.id}: priority = {self.priority!r}: must be an integer"
            )
        if type(self.state) is not CallState:
            self.state = CallState(self.state)

    @classmethod
    def for_queue(cls, call_id: str, queue: str, priority: int = 0) -> Call:
        """``Call(call_id, queue, priority=priority)`` for the common case (the queue's
        skills and language), at a third of the cost: one is made per simulated call.
        ``priority`` must be an int (not checked here)."""
        call = _new_object(cls)
        call.id = call_id
        call.queue = queue
        call.skills = {}
        call.language = None
        call.priority = priority
        call.context = {}
        call.state = _WAITING
        call.enqueued_at = call.queue_entered_at = 0.0
        call.step = call.seq = 0
        call.agent_id = None
        call.excluded = set()
        call.offered_at = call.answered_at = call.ended_at = None
        return call

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "queue": self.queue,
            "skills": dict(self.skills),
            "language": self.language,
            "priority": self.priority,
            "context": dict(self.context),
            "state": self.state.value,
            "enqueued_at": self.enqueued_at,
            "queue_entered_at": self.queue_entered_at,
            "step": self.step,
            "seq": self.seq,
            "agent_id": self.agent_id,
            "excluded": sorted(self.excluded),
            "offered_at": self.offered_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Call:
        kw = dict(d)
        kw["excluded"] = set(kw.get("excluded", ()))
        kw["state"] = CallState(kw.get("state", "waiting"))
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Requirement:
    """What an agent must have to take a call now: skill minimums and language.

    Hashable: calls with equal requirements share one index of agents.
    ``skills`` is sorted by skill name.
    """

    skills: tuple[tuple[str, int], ...]
    language: str | None = None

    @classmethod
    def of(cls, skills: Mapping[str, int], language: str | None = None) -> Requirement:
        return cls(tuple(sorted(skills.items())), language)

    def label(self) -> str:
        sk = ", ".join(f"{s}>={lv}" for s, lv in self.skills) or "any skill"
        return sk + (f", language {self.language}" if self.language else ", any language")


class Candidate(NamedTuple):
    """An eligible agent and its fit score for one call."""

    agent_id: str
    score: float
    idle_since: float


class DecisionKind(str, Enum):
    """What a :class:`Decision` records."""

    OFFERED = "offered"  # a reservation was made: the call is offered to agent_id
    QUEUED = "queued"  # no eligible agent free: the call waits (or keeps waiting)
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"
    ABANDONED = "abandoned"
    COMPLETED = "completed"


class Decision(NamedTuple):
    """One routing decision or call event, with its reasons (an immutable record).

    For ``offered``: ``candidates`` are the best eligible free agents (best
    first, at most a handful), ``eligible_count`` how many there were,
    ``score``/``runner_up_*`` the chosen agent's fit and the next best. ``step``
    is the relaxation step in force (0 = the call's own requirements) and
    ``step_label`` says what it accepts. ``trigger`` says what caused it:
    enqueue, agent_available, batch, reject, timeout, relax, overflow, abandon,
    complete, wrap_up_end. (A named tuple: immutable and cheap to make, as one
    is made per event.)
    """

    seq: int
    time: float
    call_id: str
    queue: str
    kind: DecisionKind
    trigger: str
    agent_id: str | None = None
    score: float | None = None
    runner_up_id: str | None = None
    runner_up_score: float | None = None
    candidates: tuple[Candidate, ...] = ()
    eligible_count: int = 0
    step: int = 0
    step_label: str = ""
    requirement: str = ""
    priority: float = 0.0
    waited: float = 0.0
    excluded: tuple[str, ...] = ()
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = self._asdict()
        d["kind"] = self.kind.value
        d["candidates"] = [c._asdict() for c in self.candidates]
        d["excluded"] = list(self.excluded)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        kw = dict(d)
        kw["kind"] = DecisionKind(kw["kind"])
        kw["candidates"] = tuple(Candidate(**c) for c in kw.get("candidates", ()))
        kw["excluded"] = tuple(kw.get("excluded", ()))
        return cls(**kw)
