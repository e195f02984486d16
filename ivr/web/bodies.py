"""JSON bodies of the agent and admin APIs as pydantic models: every number finite and in
range, every name bounded, unknown fields refused. A body that fails is a 422 naming the
field (:class:`ivr.web.errors.BodyError`)."""

from __future__ import annotations

import json
from typing import Annotated, Literal, TypeVar

from flask import request
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from ivr.flows.models import E164, SIP_OR_CLIENT
from ivr.web.errors import BodyError

M = TypeVar("M", bound=BaseModel)
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: Longest wrap-up an API may set: one hour.
MAX_WRAP_UP_S = 3600.0


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def valid_contact(contact: str) -> str:
    """How to reach an agent, as ``agents.yaml`` accepts it."""
    if len(contact) > 256 or not (E164.fullmatch(contact) or SIP_OR_CLIENT.fullmatch(contact)):
        raise ValueError("give 'client:<identity>', 'sip:...' or an E.164 number such as "
                         "+14155550100")
    return contact


class AgentBody(_Body):
    """``PUT /agents/ID``: add an agent or change them (absent fields stay as they are)."""

    name: Annotated[str, StringConstraints(max_length=120)] | None = None
    skills: dict[Name, Annotated[int, Field(ge=1, le=5)]] | None = Field(
        default=None, max_length=100)
    languages: list[Name] | None = Field(default=None, max_length=20)
    capacity: Annotated[int, Field(ge=1, le=20)] | None = None
    wrap_up_seconds: Annotated[float, Field(ge=0, le=MAX_WRAP_UP_S)] | None = None
    contact: str | None = None

    @field_validator("wrap_up_seconds", mode="before")
    @classmethod
    def _number(cls, value: object) -> object:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("contact")
    @classmethod
    def _dialable(cls, contact: str | None) -> str | None:
        return None if contact is None else valid_contact(contact)


class StateBody(_Body):
    """``POST /agents/ID/state``."""

    state: Literal["available", "break", "offline"]


def parse_body(model: type[M]) -> M:
    """The request's JSON body as ``model``; BodyError names the first bad field."""
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as exc:
        raise BodyError("", f"the body is not valid JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise BodyError("", "the body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        allowed = ", ".join(model.model_fields)
        message = (f"unknown field (allowed: {allowed})" if first["type"] == "extra_forbidden"
                   else first["msg"])
        raise BodyError(field, message) from None
