"""What a scenario file describes: traffic, callers, agents and targets (no running here).

The minimal single-skill form of a textbook exercise is accepted as it is::

    arrivals: {rate_per_hour: 1000}
    duration_hours: 8
    handle_time: {distribution: exponential, mean_seconds: 180}
    patience: {distribution: exponential, mean_seconds: 120}
    agents: [{count: 55}]
    service_level_seconds: 20
    replications: 10
    seed: 7

The full form adds per-interval arrival rates or a replayed call log, intents with
required skills, their own handle-time and patience laws, IVR time, self-service
containment and recognition accuracy, agent groups with skills, proficiency, shifts and
costs, staffed by head count, per interval (fractional heads allowed), from a staffing
table or from a roster of login/logout times; wrap-up time, end-of-shift rules,
callbacks, the routing policy file and planned events (outages, campaigns, meetings).
``load_scenario`` reads a file and raises :class:`~simulation.errors.ScenarioError`
naming file and field.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from routing.textfile import NotUTF8Error, read_utf8
from simulation.errors import ScenarioError, SimulationError

__all__ = [
    "DEFAULT_SKILL",
    "AgentGroup",
    "Arrivals",
    "Callbacks",
    "Campaign",
    "Distribution",
    "EndOfShift",
    "Intent",
    "Meeting",
    "Outage",
    "RosterEntry",
    "Scenario",
    "Shift",
    "load_scenario",
    "parse_scenario",
    "scenario_json_schema",
]

DEFAULT_SKILL = "default"

PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Share = Annotated[float, Field(ge=0, le=1)]
Threshold = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Instant = float | str  # seconds from time 0, "HH:MM" from time 0, or ISO 8601


class Distribution(_Model):
    """A law of durations in seconds.

    ``exponential`` and ``deterministic`` need ``mean_seconds``; ``lognormal`` and
    ``gamma`` need ``mean_seconds`` and ``cv`` (standard deviation / mean); ``weibull``
    needs ``mean_seconds`` and ``shape`` (below 1: a hazard that falls with time, as
    callers' patience does); ``empirical`` resamples ``values_seconds``; ``survival``
    is a step survival curve (a Kaplan-Meier estimate): ``survival[i]`` is the share
    still waiting after ``times_seconds[i]``, and the share left after the last time
    follows an exponential tail of mean ``tail_mean_seconds`` (never ends, if absent).
    """

    distribution: Literal[
        "exponential", "lognormal", "gamma", "weibull", "deterministic", "empirical", "survival"
    ] = "exponential"
    mean_seconds: PositiveSeconds | None = None
    cv: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    shape: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    values_seconds: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    times_seconds: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    survival: list[Share] | None = None
    tail_mean_seconds: PositiveSeconds | None = None

    @model_validator(mode="after")
    def _complete(self) -> Distribution:
        kind = self.distribution
        if kind == "empirical":
            if not self.values_seconds:
                raise ValueError("empirical needs a non-empty values_seconds list")
        elif kind == "survival":
            self._check_survival()
        elif self.mean_seconds is None:
            raise ValueError(f"{kind} needs mean_seconds")
        if kind in ("lognormal", "gamma") and self.cv is None:
            raise ValueError(f"{kind} needs cv (standard deviation / mean)")
        if kind == "weibull" and self.shape is None:
            raise ValueError("weibull needs shape (below 1: falling hazard)")
        return self

    def _check_survival(self) -> None:
        t, s = self.times_seconds, self.survival
        if not t or s is None or len(t) != len(s):
            raise ValueError("survival needs times_seconds and survival lists of equal length")
        if any(b <= a for a, b in zip(t, t[1:], strict=False)):
            raise ValueError("survival: times_seconds must increase")
        if any(b > a for a, b in zip(s, s[1:], strict=False)):
            raise ValueError("survival: survival must not increase")

    @property
    def mean(self) -> float:
        if self.distribution == "empirical":
            assert self.values_seconds
            return sum(self.values_seconds) / len(self.values_seconds)
        if self.distribution == "survival":
            t, s = self.times_seconds or [], self.survival or []
            prev_t, prev_s, m = 0.0, 1.0, 0.0
            for ti, si in zip(t, s, strict=True):
                m += (prev_s - si) * ti
                prev_t, prev_s = ti, si
            tail = self.tail_mean_seconds
            return m + (prev_s * (prev_t + tail) if tail else (math.inf if prev_s else 0.0))
        assert self.mean_seconds is not None
        return self.mean_seconds


class Arrivals(_Model):
    """Exactly one of: a constant Poisson rate, per-interval Poisson rates, a call-log CSV.

    ``replay`` is a path relative to the scenario file; its CSV has ``arrival_time``
    (ISO 8601, seconds or HH:MM from the start), ``intent`` or ``skills``
    (``;``-separated) and ``handle_seconds``; optionally ``patience_seconds`` (the
    caller's patience: an abandoned call's wait), ``patience_at_least_seconds`` (a
    lower bound: the caller waited this long and was answered; the patience is drawn
    from the scenario's law above it), ``priority`` (integer, higher first) and
    ``ivr_seconds`` (time in the IVR before queueing). Calls after ``duration_hours``
    are an error unless ``drop_after_horizon`` is true (then they are counted).
    """

    rate_per_hour: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    rates_per_hour: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    interval_minutes: Literal[15, 30, 60] = 30
    replay: str | None = None
    drop_after_horizon: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> Arrivals:
        given = [x is not None for x in (self.rate_per_hour, self.rates_per_hour, self.replay)]
        if sum(given) != 1:
            raise ValueError("give exactly one of rate_per_hour, rates_per_hour, replay")
        if self.rates_per_hour is not None and not self.rates_per_hour:
            raise ValueError("rates_per_hour is empty")
        return self


class Intent(_Model):
    """One reason for calling, and how such callers travel through IVR and queues."""

    name: Annotated[str, Field(min_length=1)]
    share: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 1.0
    skills: list[str] | None = None  # required skills; default: [name]
    handle_time: Distribution | None = None  # default: the scenario's handle_time
    patience: Distribution | None = None  # default: by priority class, then the scenario's
    queue: str | None = None  # routing-policy queue; default: the intent's name
    priority: int = 0
    ivr_seconds: Annotated[float, Field(ge=0)] = 0.0
    containment: Share = 0.0  # share resolved by self-service, never queued
    recognition_accuracy: Share = 1.0  # else routed to another intent's skills, then transferred

    @property
    def required_skills(self) -> tuple[str, ...]:
        return tuple(self.skills) if self.skills else (self.name,)

    @property
    def queue_name(self) -> str:
        return self.queue or self.name


class Shift(_Model):
    """Hours (from the start of the simulated day) an agent group is logged in."""

    start_hour: Annotated[float, Field(ge=0)] = 0.0
    end_hour: Annotated[float, Field(gt=0)] = math.inf

    @model_validator(mode="after")
    def _ordered(self) -> Shift:
        if self.end_hour <= self.start_hour:
            raise ValueError("end_hour must be after start_hour")
        return self


class RosterEntry(_Model):
    """One logged-in span of one agent (an agent may have several rows); ``breaks`` are
    clock times ``HH:MM-HH:MM`` separated by spaces, each taken at or after the login."""

    agent: Annotated[str, Field(min_length=1)]
    login: Instant
    logout: Instant
    breaks: str | None = None


class AgentGroup(_Model):
    """Agents alike in skills (and shift).

    ``skills`` maps a skill to a proficiency 1-5 (a list means proficiency 3 each);
    default is the one skill of a single-skill scenario. Staffing is ``count`` all
    day, or (overriding it) one of: ``counts_per_interval`` (one head count per scenario interval,
    what ``ivr staff`` writes), ``staffing_table`` (a CSV of ``interval_start,agents``
    rows, each level holding until the next row; a ``group`` column selects this
    group's rows), or ``roster`` (login/logout per agent: a list, or a CSV with
    ``agent_id,login,logout`` and optionally ``group``). Fractional head counts are
    kept exactly: 12.4 agents are 12 agents and one more logged in for the first 40%
    of the interval. ``shift`` clips all of them. ``shrinkage`` is the share of the
    staffing that takes no calls (absence, training, meetings): head counts are scaled by
    ``1 - shrinkage``; of a roster's identical shifts that share is left out (to within
    one; a lone shift with that probability, decided by a hash of its times).
    """

    name: str | None = None
    count: Annotated[int, Field(ge=0)] = 0
    counts_per_interval: list[Annotated[float, Field(ge=0, allow_inf_nan=False)]] | None = None
    staffing_table: str | None = None
    roster: str | list[RosterEntry] | None = None
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]] | list[str] | None = None
    shift: Shift = Shift()
    cost_per_hour: Annotated[float, Field(ge=0)] | None = None
    wrap_up_seconds: Annotated[float, Field(ge=0)] | None = None  # default: the scenario's
    shrinkage: Annotated[float, Field(ge=0, lt=1)] = 0.0

    @model_validator(mode="after")
    def _one_staffing(self) -> AgentGroup:
        given = [
            k
            for k in ("counts_per_interval", "staffing_table", "roster")
            if getattr(self, k) is not None
        ]
        if len(given) > 1:
            raise ValueError(f"give at most one of {', '.join(given)}")
        return self

    @property
    def may_staff(self) -> bool:
        """Whether this group has any agent at all (a file-based staffing may)."""
        if self.counts_per_interval is not None:
            return any(self.counts_per_interval)
        return bool(self.count or self.staffing_table or self.roster)

    @property
    def skill_levels(self) -> dict[str, int]:
        if self.skills is None:
            return {DEFAULT_SKILL: 3}
        if isinstance(self.skills, list):
            return {s: 3 for s in self.skills}
        return dict(self.skills)


class Callbacks(_Model):
    """Offer a callback (keeping the caller's place in line) after a wait."""

    offer_after_seconds: PositiveSeconds
    accept_share: Share


class EndOfShift(_Model):
    """What happens at logout. An agent always finishes the call in hand (and its
    wrap-up); that time past the scheduled logout is counted as overtime.
    ``no_new_calls_seconds`` stops offering calls that long before each logout."""

    no_new_calls_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0


class Outage(_Model):
    """A queue closes at ``at`` for ``minutes``: calls reaching it meanwhile are turned
    away (counted ``blocked``); calls already waiting stay in line."""

    kind: Literal["outage"]
    queue: Annotated[str, Field(min_length=1)]
    at: Instant
    minutes: PositiveSeconds


class Campaign(_Model):
    """From ``at`` (until ``until``, default the horizon) arrivals of ``intents`` (default
    all) are multiplied by ``multiply``: the extra calls are drawn on a stream of their own,
    so the day's other callers stay the same."""

    kind: Literal["campaign"]
    at: Instant
    until: Instant | None = None
    multiply: Annotated[float, Field(gt=1, allow_inf_nan=False)]
    intents: list[str] | None = None


class Meeting(_Model):
    """``agents`` of a group (default all) on shift at ``at`` leave for ``minutes``; each
    finishes the call in hand first, and is not logged in meanwhile."""

    kind: Literal["meeting"]
    group: Annotated[str, Field(min_length=1)]
    agents: Annotated[int, Field(ge=1)] | None = None
    at: Instant
    minutes: PositiveSeconds


ScenarioEvent = Annotated[Outage | Campaign | Meeting, Field(discriminator="kind")]


class FlowSpec(_Model):
    """Callers walk this IVR flow file (``ivr.engine``): IVR time, containment and
    recognition come from the flow and its recognizer instead of the intents' fields.

    Intent names are the flow's ``ask`` intents; ``samples_per_interval`` journeys are
    drawn per intent and interval (at mid-interval, for opening hours) and resampled.
    """

    path: str
    speech_share: Share = 0.6  # callers who speak rather than press keys, where both work
    garble_share: Share = 0.2  # spoken answers with one word replaced by another
    words_per_second: PositiveSeconds = 2.5  # prompt speech rate
    response_seconds: Annotated[float, Field(ge=0)] = 3.0  # caller's time to answer
    samples_per_interval: Annotated[int, Field(ge=1, le=10_000)] = 40
    day_start: datetime | None = None  # default: Monday 09:00 in the flow's time zone


class Scenario(_Model):
    """A planning scenario. Times in seconds unless the field name says hours/minutes."""

    arrivals: Arrivals
    duration_hours: Annotated[float, Field(gt=0, le=24 * 31)]
    handle_time: Distribution | None = None
    patience: Distribution | None = None  # None: callers never hang up
    patience_by_priority: dict[int, Distribution] | None = None  # by the call's priority
    agents: Annotated[list[AgentGroup], Field(min_length=1)]
    service_level_seconds: Threshold | Annotated[list[Threshold], Field(min_length=1)] = 20.0
    end_of_shift: EndOfShift = EndOfShift()
    start_at: datetime | None = None  # wall clock of time 0 (default: replay's first midnight)
    events: list[ScenarioEvent] | None = None  # outages, campaigns, meetings (SimPy processes)
    replications: Annotated[int, Field(ge=2, le=10_000)] = 10
    seed: int = 0
    interval_minutes: Literal[15, 30, 60] | None = None  # default: arrivals.interval_minutes
    warmup_minutes: Annotated[float, Field(ge=0)] = 0.0
    intents: list[Intent] | None = None
    wrap_up_seconds: Annotated[float, Field(ge=0)] = 0.0
    proficiency_speed: dict[Annotated[int, Field(ge=1, le=5)], PositiveSeconds] = Field(
        default_factory=lambda: {1: 1.0, 2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0}
    )
    transfer_seconds: Annotated[float, Field(ge=0)] = 60.0
    callbacks: Callbacks | None = None
    flow: FlowSpec | None = None  # IVR flow file the callers walk through
    routing_policy: str | None = None  # path of the routing policy file
    cost_per_agent_hour: Annotated[float, Field(ge=0)] = 0.0
    base_dir: str = Field(default=".", exclude=True)
    source: str = Field(default="<scenario>", exclude=True)

    @model_validator(mode="after")
    def _coherent(self) -> Scenario:
        replay = self.arrivals.replay is not None
        if self.intents is None and self.handle_time is None and not replay:
            raise ValueError("give handle_time (or intents each with handle_time)")
        if self.intents is not None:
            names = [i.name for i in self.intents]
            if len(set(names)) != len(names):
                raise ValueError("intent names must be unique")
            for i in self.intents:  # a replay takes handle times from its log
                if i.handle_time is None and self.handle_time is None and not replay:
                    raise ValueError(f"intent {i.name!r} has no handle_time and no default")
        needed = {s for i in self.intents for s in i.required_skills} if self.intents else set()
        if not self.intents and self.arrivals.replay is None:
            needed = {DEFAULT_SKILL}
        have = {s for g in self.agents for s in g.skill_levels}
        missing = sorted(needed - have)
        if missing:
            raise ValueError(f"no agent group has skill(s) {missing}")
        for k, g in enumerate(self.agents):
            if g.counts_per_interval is not None and len(g.counts_per_interval) != self.n_intervals:
                raise ValueError(
                    f"agents.{k}.counts_per_interval has {len(g.counts_per_interval)}"
                    f" entries, the day has {self.n_intervals} intervals"
                )
        return self

    @property
    def service_level_thresholds(self) -> tuple[float, ...]:
        """Every service-level threshold, in seconds (the first is the headline one)."""
        t = self.service_level_seconds
        return tuple(float(x) for x in t) if isinstance(t, list) else (float(t),)

    @property
    def service_level_threshold(self) -> float:
        """The headline service-level threshold (``service_level``), in seconds."""
        return self.service_level_thresholds[0]

    def patience_for(self, intent: Intent, priority: int) -> Distribution | None:
        """A call's patience law: its intent's, else its priority class's, else the default."""
        if intent.patience is not None:
            return intent.patience
        by = self.patience_by_priority
        if by is not None and priority in by:
            return by[priority]
        return self.patience

    @property
    def interval_seconds(self) -> float:
        return 60.0 * (self.interval_minutes or self.arrivals.interval_minutes)

    @property
    def horizon_seconds(self) -> float:
        return self.duration_hours * 3600.0

    @property
    def n_intervals(self) -> int:
        return max(1, math.ceil(self.horizon_seconds / self.interval_seconds - 1e-9))

    @property
    def intent_list(self) -> list[Intent]:
        """Intents, with the single-skill form mapped to one intent needing ``default``."""
        if self.intents:
            return list(self.intents)
        return [Intent(name=DEFAULT_SKILL, skills=[DEFAULT_SKILL])]

    def group_name(self, index: int) -> str:
        return self.agents[index].name or f"group{index + 1}"

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(x) for x in loc if not str(x).startswith("function-"))


def parse_scenario(data: Any, *, source: str = "<scenario>", base_dir: str = ".") -> Scenario:
    """Validate a mapping as a scenario; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise ScenarioError(source, "", "a scenario must be a mapping")
    try:
        return Scenario.model_validate({**data, "source": source, "base_dir": base_dir})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _field_path(tuple(err["loc"]))
        msg = err["msg"].removeprefix("Value error, ")
        raise ScenarioError(source, field, msg) from None


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML (or JSON) file."""
    p = Path(path)
    try:
        text = read_utf8(p)
    except OSError as exc:
        raise ScenarioError(str(p), "", f"cannot read: {exc.strerror}") from None
    except NotUTF8Error as exc:
        raise SimulationError(str(exc)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(str(p), "", f"not valid YAML: {exc}") from None
    return parse_scenario(data, source=str(p), base_dir=str(p.parent))


def scenario_json_schema() -> str:
    """The published JSON Schema of scenario files."""
    schema = Scenario.model_json_schema(mode="validation")
    for hidden in ("base_dir", "source"):
        schema.get("properties", {}).pop(hidden, None)
    return json.dumps(schema, indent=2)
