"""The flow file format: pydantic models, exported as JSON Schema.

A flow is a YAML mapping with flow-wide settings and ``nodes``: named nodes,
each of one ``type``, with explicit next nodes. These models check the shape of
one file; :mod:`ivr.flows.checks` checks the graph (targets, reachability,
loops) and :mod:`ivr.flows.loader` turns both into an immutable :class:`Flow`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DTMF_KEYS = frozenset("0123456789*#")
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SIP_OR_CLIENT = re.compile(r"^(sip:|client:)\S+$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HOURS_RANGE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")

# A prompt is plain text, or text per language code: {en: "...", es: "..."}, or a list of
# one-language segments spoken in turn, each with its own language's voice:
# [{en: "For English, press 1."}, {es: "Para español, oprima 2."}].
Text = Union[str, dict[str, str], list[dict[str, str]]]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- conditions


class VarCondition(_Model):
    """Compare a session value (dotted path such as ``customer.vip``)."""

    var: str
    equals: Any = None
    equals_var: str | None = None
    not_equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None
    gte: float | None = None
    lte: float | None = None
    contains: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_test(self) -> VarCondition:
        tests = [
            name
            for name in ("equals", "equals_var", "not_equals", "in_", "exists", "gte", "lte",
                         "contains")
            if name in self.model_fields_set
        ]
        if not tests:
            raise ValueError(
                "needs one test: equals, equals_var, not_equals, in, exists, gte, lte or contains"
            )
        return self


class OpenCondition(_Model):
    """True while the named business hours (top-level ``hours``) are open."""

    open: str


class IncidentCondition(_Model):
    """True while the named incident (top-level ``incidents``) is active."""

    incident: str


class AllCondition(_Model):
    all: list[Condition] = Field(min_length=1)


class AnyCondition(_Model):
    any: list[Condition] = Field(min_length=1)


class NotCondition(_Model):
    not_: Condition = Field(alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


Condition = Union[
    VarCondition, OpenCondition, IncidentCondition, AllCondition, AnyCondition, NotCondition
]
AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()


# ---------------------------------------------------------------- flow-wide settings


class Language(_Model):
    """How prompts in one language are spoken (Twilio ``<Say>`` voice and language)."""

    voice: str = "Polly.Joanna"
    locale: str = "en-US"


class BusinessHours(_Model):
    """Weekly opening hours in a time zone, with holidays (closed all day)."""

    timezone: str | None = None
    weekly: dict[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], list[str]]
    holidays: list[dt.date] = []

    @field_validator("weekly")
    @classmethod
    def _ranges(cls, weekly: dict[str, list[str]]) -> dict[str, list[str]]:
        for day, ranges in weekly.items():
            for r in ranges:
                m = _HOURS_RANGE.match(r)
                if not m or (m[1], m[2]) >= (m[3], m[4]):
                    raise ValueError(f"{day}: '{r}' is not a range like '09:00-17:30'")
        return weekly


class Incident(_Model):
    """An announcement an admin switches on (``active``) or schedules (``starts``/``ends``)."""

    active: bool = False
    starts: dt.datetime | None = None
    ends: dt.datetime | None = None
    message: Text | None = None


class DataSource(_Model):
    """Customer data for ``lookup`` nodes: a CSV file or a SQLite table (paths relative
    to the flow file), keyed by one column."""

    csv: str | None = None
    sqlite: str | None = None
    table: str | None = None
    key_column: str = "phone"

    @model_validator(mode="after")
    def _one_kind(self) -> DataSource:
        if (self.csv is None) == (self.sqlite is None):
            raise ValueError("give exactly one of 'csv' or 'sqlite'")
        if self.sqlite is not None and not self.table:
            raise ValueError("a sqlite source needs 'table'")
        return self


class Escape(_Model):
    """How a caller reaches a human from any ask: key ``0`` or words like "agent".

    ``target`` is the node to go to; when left out, the flow gets a built-in route
    to the ``general`` queue.
    """

    target: str | None = None
    keys: list[str] = ["0"]
    phrases: list[str] = [
        "agent",
        "representative",
        "operator",
        "human",
        "real person",
        "customer service",
        "speak to someone",
        "talk to someone",
    ]


# ---------------------------------------------------------------- nodes


class _Node(_Model):
    description: str | None = None


class SayNode(_Node):
    """Speak text (``{var.path}`` placeholders are filled from session data)."""

    type: Literal["say"]
    text: Text
    next: str


class PlayNode(_Node):
    """Play an audio file by URL."""

    type: Literal["play"]
    url: str
    loop: int = Field(default=1, ge=1, le=10)
    next: str


class Intent(_Model):
    """One answer an ask accepts: DTMF keys and/or example phrases."""

    keys: list[str] = []
    examples: list[str] = []
    label: Text | None = None
    set: dict[str, Any] = {}
    next: str


class AskNode(_Node):
    """Ask the caller why they are calling, by speech and/or keys, and map the answer
    to an intent. After ``max_attempts`` failed tries the call goes to ``no_match``
    (or ``no_input`` when the caller said nothing).

    When the recognizer is unsure (its best guess is under ``threshold``),
    ``when_unsure`` decides: ask again (``reprompt``), offer the two likeliest intents
    as a short menu (``offer_choices``: "Is this about your card, or a transfer?",
    using each intent's ``label``), or go to a human (``agent``)."""

    type: Literal["ask"]
    prompt: Text
    reprompt: Text | None = None
    no_input_prompt: Text | None = None
    no_match_prompt: Text | None = None
    input: list[Literal["speech", "dtmf"]] = Field(default=["speech", "dtmf"], min_length=1)
    intents: dict[str, Intent] = Field(min_length=1)
    examples_csv: str | None = None
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # None: the model's own
    when_unsure: Literal["reprompt", "offer_choices", "agent"] = "reprompt"
    choices_prompt: Text | None = None
    max_attempts: int = Field(default=3, ge=1, le=10)
    timeout_seconds: int = Field(default=5, ge=1, le=60)
    speech_hints: list[str] = []
    store_as: str = "intent"
    no_match: str | None = None
    no_input: str | None = None


class CollectNode(_Node):
    """Collect digits (account number, date of birth, PIN) and validate them."""

    type: Literal["collect"]
    prompt: Text
    invalid_prompt: Text | None = None
    store_as: str
    min_digits: int = Field(default=1, ge=1, le=32)
    max_digits: int = Field(default=16, ge=1, le=32)
    validate_as: Literal["digits", "luhn", "date_mmddyyyy", "date_ddmmyyyy"] = Field(
        default="digits", alias="validate"
    )
    finish_on_key: Literal["#", "*", ""] = "#"
    max_attempts: int = Field(default=3, ge=1, le=10)
    timeout_seconds: int = Field(default=8, ge=1, le=60)
    next: str
    on_failure: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _lengths(self) -> CollectNode:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) > max_digits ({self.max_digits})")
        return self


class Case(_Model):
    when: Condition
    next: str


class BranchNode(_Node):
    """Go to the first case whose condition holds, else ``default``."""

    type: Literal["branch"]
    cases: list[Case] = Field(min_length=1)
    default: str


class SetNode(_Node):
    """Set session values (dotted paths) and go on."""

    type: Literal["set"]
    values: dict[str, Any]
    next: str


class GotoNode(_Node):
    """Go to another node (also what a sub-flow's ``return`` becomes once inlined)."""

    type: Literal["goto"]
    next: str


class LookupNode(_Node):
    """Look the caller up in a data source so nobody repeats their details."""

    type: Literal["lookup"]
    source: str
    key: str = "caller"
    store_as: str = "customer"
    found: str
    not_found: str


class PriorityRule(_Model):
    when: Condition
    add: int


class RouteNode(_Node):
    """Hand the call to the skills-based router: required skills with minimum levels,
    language, priority and the context the agent sees."""

    type: Literal["route"]
    queue: str
    skills: dict[str, Annotated[int, Field(ge=1, le=5)]] = {}
    language: str | None = None
    priority: int = Field(default=0, ge=0, le=100)
    priority_rules: list[PriorityRule] = []
    context: list[str] | None = None
    announce: Text | None = None
    callback_after_seconds: int | None = Field(default=None, ge=0)
    after: str | None = None


class TransferNode(_Node):
    """Transfer to an outside number (E.164), SIP URI or Twilio Client identity."""

    type: Literal["transfer"]
    number: str
    announce: Text | None = None
    timeout_seconds: int = Field(default=30, ge=5, le=600)
    on_failure: str | None = None
    after: str | None = None

    @field_validator("number")
    @classmethod
    def _dialable(cls, number: str) -> str:
        if not (E164.match(number) or SIP_OR_CLIENT.match(number)):
            raise ValueError(
                f"'{number}' is not dialable: use E.164 like '+14155550100', sip:... or client:..."
            )
        return number


class VoicemailNode(_Node):
    """Record a message for a mailbox."""

    type: Literal["voicemail"]
    prompt: Text
    mailbox: str = "general"
    max_length_seconds: int = Field(default=120, ge=5, le=3600)
    next: str


class SurveyQuestion(_Model):
    id: str
    prompt: Text
    scale: Literal["csat", "ces", "nps"]


class SurveyNode(_Node):
    """Post-call survey: CSAT (1-5), CES (1-7) or NPS (0-9 keys, 0-10 said) by keypad."""

    type: Literal["survey"]
    questions: list[SurveyQuestion] = Field(min_length=1)
    thanks: Text | None = None
    next: str


class SubflowNode(_Node):
    """Run a sub-flow (another file in the same folder, by id) and come back to ``next``."""

    type: Literal["subflow"]
    flow: str
    next: str


class ReturnNode(_Node):
    """End of a sub-flow: go back to the calling flow's ``next``."""

    type: Literal["return"]


class HangupNode(_Node):
    """Say goodbye (optional) and end the call."""

    type: Literal["hangup"]
    text: Text | None = None


Node = Annotated[
    Union[
        SayNode,
        PlayNode,
        AskNode,
        CollectNode,
        BranchNode,
        SetNode,
        GotoNode,
        LookupNode,
        RouteNode,
        TransferNode,
        VoicemailNode,
        SurveyNode,
        SubflowNode,
        ReturnNode,
        HangupNode,
    ],
    Field(discriminator="type"),
]

# Node kinds that wait for the caller; a loop must pass through one of them.
INTERACTIVE = (AskNode, CollectNode, SurveyNode, VoicemailNode)
# Node kinds after which the IVR's part of the call is over.
TERMINAL = (RouteNode, TransferNode, HangupNode, ReturnNode)


class FlowSpec(_Model):
    """One flow file."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    subflow: bool = False
    default: bool = False
    numbers: list[str] = []
    start: str
    languages: dict[str, Language] = {"en": Language()}
    timezone: str = "UTC"
    hours: dict[str, BusinessHours] = {}
    incidents: dict[str, Incident] = {}
    sources: dict[str, DataSource] = {}
    escape: Escape = Escape()
    max_failed_tries: int = Field(default=9, ge=1, le=50)
    private: list[str] = []  # session paths never handed to agents (e.g. customer.dob)
    nodes: dict[str, Node] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, tz: str) -> str:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{tz}' (use an IANA name like 'America/New_York')") from None
        return tz

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, numbers: list[str]) -> list[str]:
        for n in numbers:
            if not E164.match(n):
                raise ValueError(f"'{n}' is not an E.164 number like '+14155550100'")
        return numbers

    @field_validator("languages")
    @classmethod
    def _languages(cls, languages: dict[str, Language]) -> dict[str, Language]:
        if not languages:
            raise ValueError("declare at least one language, e.g. {en: {voice: Polly.Joanna}}")
        return languages

    @property
    def default_language(self) -> str:
        return next(iter(self.languages))


def flow_json_schema() -> dict[str, Any]:
    """JSON Schema of the flow file format, for editors."""
    schema = FlowSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "IVR flow"
    return schema
