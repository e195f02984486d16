"""The routing policy: queues, relaxation steps, weights, aging, timeouts.

One load path: YAML -> pydantic models -> cross-field checks -> frozen
:class:`RoutingPolicy`. Every problem is collected into one
:class:`~routing.errors.PolicyError` whose lines read
``file: field.path: what is wrong (value), and the fix``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from routing.errors import PolicyError, UnknownQueueError
from routing.models import MAX_LEVEL, MIN_LEVEL, Requirement

_STRICT = ConfigDict(extra="forbid", frozen=True)


class RelaxStep(BaseModel):
    """From ``after_seconds`` of waiting on, accept agents at ``min_level`` or above
    in each required skill (never raising a requirement); ``any_language`` drops
    the language requirement."""

    model_config = _STRICT
    after_seconds: float = Field(gt=0)
    min_level: int | None = Field(default=None, ge=MIN_LEVEL, le=MAX_LEVEL)
    any_language: bool = False

    def label(self) -> str:
        parts = []
        if self.min_level is not None:
            parts.append(
                "any agent with the skills" if self.min_level == 1 else f"level >= {self.min_level}"
            )
        if self.any_language:
            parts.append("any language")
        return f"after {self.after_seconds:g} s: " + (", ".join(parts) or "no change")


class ServiceLevel(BaseModel):
    """Answer ``target`` of offered calls within ``threshold_seconds``."""

    model_config = _STRICT
    threshold_seconds: float = Field(default=20.0, gt=0)
    target: float = Field(default=0.8, gt=0, le=1)


class QueueSpec(BaseModel):
    """One queue: its default requirements, priority, service level and relaxation."""

    model_config = _STRICT
    skills: dict[str, int] = Field(default_factory=dict)
    language: str | None = None
    priority: int = 0
    service_level: ServiceLevel = Field(default_factory=ServiceLevel)
    relax: list[RelaxStep] = Field(default_factory=list)
    max_wait_seconds: float | None = Field(default=None, gt=0)
    overflow_queue: str | None = None
    handle_seconds: float | None = Field(default=None, gt=0)


class Scoring(BaseModel):
    """Fit score = sum over the call's required skills of weight(skill) * agent level."""

    model_config = _STRICT
    default_weight: float = Field(default=1.0, gt=0)
    skill_weights: dict[str, float] = Field(default_factory=dict)

    def weight(self, skill: str) -> float:
        return self.skill_weights.get(skill, self.default_weight)


class PriorityAging(BaseModel):
    """Effective priority = priority + waited / seconds_per_level (None: no aging)."""

    model_config = _STRICT
    seconds_per_level: float | None = Field(default=None, gt=0)


class Reservation(BaseModel):
    """How long an offer waits for the agent, and where a silent agent goes."""

    model_config = _STRICT
    timeout_seconds: float = Field(default=15.0, gt=0)
    agent_state_on_timeout: Literal["available", "break"] = "available"


class Alerts(BaseModel):
    """When the wallboard raises a queue's alert (None: never on that measure)."""

    model_config = _STRICT
    waiting: int | None = Field(default=5, ge=1)
    longest_wait_seconds: float | None = Field(default=60.0, gt=0)
    service_level_below_target: bool = True
    abandon_rate_above: float | None = Field(default=0.10, gt=0, le=1)


class Floor(BaseModel):
    """What the people on the floor record and see: transfer reasons, repeat-contact
    windows of the KPIs, and the wallboard's alert thresholds."""

    model_config = _STRICT
    transfer_reasons: list[str] = Field(
        default_factory=lambda: ["misrouted", "needs_other_skill", "escalation",
                                 "caller_request"], min_length=1)
    break_reasons: list[str] = Field(
        default_factory=lambda: ["lunch", "personal", "training", "meeting", "other"],
        min_length=1)
    fcr_repeat_days: float = Field(default=7.0, gt=0)
    containment_repeat_hours: float = Field(default=24.0, gt=0)
    alerts: Alerts = Field(default_factory=Alerts)


class RoutingPolicy(BaseModel):
    """A whole routing policy (see ``flows/routing.yaml`` for an example)."""

    model_config = _STRICT
    version: Literal[1] = 1
    skills: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    queues: dict[str, QueueSpec]
    scoring: Scoring = Field(default_factory=Scoring)
    priority_aging: PriorityAging = Field(default_factory=PriorityAging)
    reservation: Reservation = Field(default_factory=Reservation)
    wrap_up_seconds: float = Field(default=30.0, ge=0)
    handle_seconds: float = Field(default=300.0, gt=0)
    floor: Floor = Field(default_factory=Floor)

    @classmethod
    def default(cls) -> RoutingPolicy:
        """One ``general`` queue (skill general >= 1, relaxed to any agent after 60 s)."""
        return cls(
            queues={
                "general": QueueSpec(
                    skills={"general": 1},
                    relax=[RelaxStep(after_seconds=60, min_level=1, any_language=True)],
                )
            }
        )

    def queue(self, name: str) -> QueueSpec:
        """The queue called ``name``; an UnknownQueueError names the close matches."""
        try:
            return self.queues[name]
        except KeyError:
            raise UnknownQueueError(
                f"queue {name!r} is not in the routing policy{did_you_mean(name, self.queues)}; "
                f"declared: {', '.join(sorted(self.queues))}"
            ) from None

    def effective(
        self, queue: str, skills: Mapping[str, int], language: str | None, step: int
    ) -> Requirement:
        """Requirement after applying relaxation steps 1..``step`` of ``queue``."""
        if step <= 0:
            return Requirement.of(skills, language)
        spec = self.queues[queue]
        cap = MAX_LEVEL
        any_lang = False
        for st in spec.relax[:step]:
            if st.min_level is not None:
                cap = min(cap, st.min_level)
            any_lang = any_lang or st.any_language
        return Requirement.of(
            {s: min(lv, cap) for s, lv in skills.items()}, None if any_lang else language
        )

    def step_label(self, queue: str, step: int) -> str:
        if step <= 0:
            return "step 0: the call's own requirements"
        return f"step {step}: " + self.queues[queue].relax[step - 1].label()


def did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _loc(parts: tuple[Any, ...]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


_ALL_FIELDS = sorted(
    {
        f
        for m in (
            RelaxStep,
            ServiceLevel,
            QueueSpec,
            Scoring,
            PriorityAging,
            Reservation,
            RoutingPolicy,
        )
        for f in m.model_fields
    }
)


def _pydantic_problems(source: str, err: ValidationError) -> list[str]:
    out = []
    for e in err.errors():
        where = _loc(tuple(e["loc"]))
        if e["type"] == "extra_forbidden":
            field = str(e["loc"][-1])
            out.append(
                f"{source}: {where}: unknown field{did_you_mean(field, _ALL_FIELDS)}"
                " (remove it or fix its name)"
            )
        elif e["type"] == "missing":
            out.append(f"{source}: {where}: required field is missing")
        else:
            out.append(f"{source}: {where}: {e['msg']} (got {e.get('input')!r})")
    return out


def _semantic_problems(source: str, p: RoutingPolicy) -> list[str]:
    out: list[str] = []
    known_skills = set(p.skills)
    known_langs = set(p.languages)

    def check_skill(where: str, skill: str) -> None:
        if known_skills and skill not in known_skills:
            out.append(
                f"{source}: {where}: unknown skill {skill!r}{did_you_mean(skill, known_skills)}"
                " (add it to `skills` or fix the name)"
            )

    def check_lang(where: str, lang: str | None) -> None:
        if lang is not None and known_langs and lang not in known_langs:
            out.append(
                f"{source}: {where}: unknown language {lang!r}{did_you_mean(lang, known_langs)}"
                " (add it to `languages` or fix the code)"
            )

    if not p.queues:
        out.append(f"{source}: queues: at least one queue is needed (e.g. general)")
    for skill, w in p.scoring.skill_weights.items():
        check_skill(f"scoring.skill_weights.{skill}", skill)
        if not w > 0:
            out.append(
                f"{source}: scoring.skill_weights.{skill}: must be > 0, got {w:g} "
                "(leave a skill out to use default_weight)"
            )
    for name, q in p.queues.items():
        base = f"queues.{name}"
        for skill, level in q.skills.items():
            check_skill(f"{base}.skills.{skill}", skill)
            if not MIN_LEVEL <= level <= MAX_LEVEL:
                out.append(
                    f"{source}: {base}.skills.{skill}: level {level} is outside "
                    f"{MIN_LEVEL}-{MAX_LEVEL}"
                )
        check_lang(f"{base}.language", q.language)
        prev_after, prev_level = 0.0, MAX_LEVEL + 1
        for i, st in enumerate(q.relax):
            where = f"{base}.relax[{i}]"
            if st.after_seconds < prev_after:
                out.append(
                    f"{source}: {where}.after_seconds: must be >= the previous step "
                    f"({prev_after:g}), got {st.after_seconds:g}"
                )
            if st.min_level is not None:
                if st.min_level > prev_level:
                    out.append(
                        f"{source}: {where}.min_level: {st.min_level} would tighten the "
                        f"previous step ({prev_level}); steps may only relax"
                    )
                prev_level = st.min_level
            if st.min_level is None and not st.any_language:
                out.append(f"{source}: {where}: relaxes nothing; set min_level and/or any_language")
            if q.max_wait_seconds is not None and st.after_seconds >= q.max_wait_seconds:
                out.append(
                    f"{source}: {where}.after_seconds: {st.after_seconds:g} is not before "
                    f"max_wait_seconds ({q.max_wait_seconds:g}); the step would never apply"
                )
            prev_after = st.after_seconds
        if q.overflow_queue is not None:
            if q.overflow_queue not in p.queues:
                out.append(
                    f"{source}: {base}.overflow_queue: unknown queue {q.overflow_queue!r}"
                    f"{did_you_mean(q.overflow_queue, p.queues)}"
                )
            elif q.overflow_queue == name:
                out.append(f"{source}: {base}.overflow_queue: a queue cannot overflow into itself")
            if q.max_wait_seconds is None:
                out.append(
                    f"{source}: {base}.max_wait_seconds: required with overflow_queue "
                    "(when should the call move?)"
                )
        elif q.max_wait_seconds is not None:
            out.append(
                f"{source}: {base}.overflow_queue: required with max_wait_seconds "
                "(where should the call go?)"
            )
    # overflow chains must end
    for name in p.queues:
        seen = [name]
        nxt = p.queues[name].overflow_queue
        while nxt is not None and nxt in p.queues and nxt not in seen:
            seen.append(nxt)
            nxt = p.queues[nxt].overflow_queue
        if nxt is not None and nxt in p.queues and nxt == name and len(seen) > 1:
            out.append(
                f"{source}: queues.{name}.overflow_queue: overflow loop "
                f"{' -> '.join(seen + [name])}; end the chain in a queue without overflow"
            )
    return out


def parse_policy(data: Any, source: str = "<policy>") -> RoutingPolicy:
    """Validate a policy given as plain data; raise PolicyError with every problem."""
    if not isinstance(data, Mapping):
        got = type(data).__name__
        raise PolicyError([f"{source}: (top level): expected a mapping with `queues`, got {got}"])
    try:
        policy = RoutingPolicy.model_validate(dict(data))
    except ValidationError as err:
        raise PolicyError(_pydantic_problems(source, err)) from None
    problems = _semantic_problems(source, policy)
    if problems:
        raise PolicyError(problems)
    return policy


def load_policy(path: str | Path) -> RoutingPolicy:
    """Read and validate a routing policy YAML file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError([f"{source}: cannot read the file ({err.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise PolicyError(
            [f"{source}: {where}: not valid YAML ({getattr(err, 'problem', err)})"]
        ) from None
    return parse_policy(data, source)
