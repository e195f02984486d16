"""The roster: which agents exist, with the skills supervisors gave them and how to
reach them. ``agents.yaml`` beside the flows; agents log in through the agent API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ivr.errors import FlowError
from ivr.flows.models import E164, SIP_OR_CLIENT
from routing import Agent, RoutingPolicy
from routing.textfile import NotUTF8Error, read_utf8

ROSTER_FILE = "agents.yaml"


class AgentSpec(BaseModel):
    """One agent of the roster."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    name: str = ""
    skills: dict[str, int]
    languages: list[str] = []
    capacity: int = Field(default=1, ge=1)
    wrap_up_seconds: float | None = Field(default=None, ge=0)
    contact: str

    @field_validator("contact")
    @classmethod
    def _dialable(cls, contact: str) -> str:
        if not (E164.match(contact) or SIP_OR_CLIENT.match(contact)):
            raise ValueError(f"'{contact}' is not client:<identity>, sip:... or E.164")
        return contact

    def agent(self) -> Agent:
        return Agent(id=self.id, name=self.name, skills=dict(self.skills),
                     languages=frozenset(self.languages), capacity=self.capacity,
                     wrap_up_seconds=self.wrap_up_seconds)


class Roster(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    agents: list[AgentSpec]


def load_roster(folder: Path, policy: RoutingPolicy | None = None) -> list[AgentSpec]:
    """The roster of a flows folder ([] when it has none); FlowError names every problem."""
    path = folder / ROSTER_FILE
    if not path.is_file():
        return []
    try:
        data: Any = yaml.safe_load(read_utf8(path))
        roster = Roster.model_validate(data)
    except yaml.YAMLError as exc:
        raise FlowError([f"{path}: YAML syntax error: {exc}"]) from None
    except NotUTF8Error as exc:
        raise FlowError([str(exc)]) from None
    except ValidationError as exc:
        raise FlowError([f"{path}: " + ".".join(str(p) for p in e["loc"]) + f": {e['msg']}"
                         for e in exc.errors()]) from None
    problems = []
    seen: set[str] = set()
    for k, spec in enumerate(roster.agents):
        if spec.id in seen:
            problems.append(f"{path}: agents[{k}].id: '{spec.id}' is listed twice")
        seen.add(spec.id)
        for skill, level in spec.skills.items():
            if not 1 <= level <= 5:
                problems.append(f"{path}: agents[{k}].skills.{skill}: level {level} is not 1-5")
            if policy is not None and policy.skills and skill not in policy.skills:
                problems.append(f"{path}: agents[{k}].skills.{skill}: not a skill of the "
                                f"routing policy ({', '.join(policy.skills)})")
    if problems:
        raise FlowError(problems)
    return list(roster.agents)
