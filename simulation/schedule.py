"""``ivr schedule``: shifts that cover per-interval requirements, at least cost.

The integer program (set covering with explicit break placement): one integer variable
per (group, day, shift type, start, break placement) counts the agents working it.
Every interval and group needs ``sum(on duty) * (1 - shrinkage) >= required``; each
(group, day, shift type) has ``min_heads <= heads <= max_heads``; the cost is paid
hours times the group's cost per hour. HiGHS solves it through ``scipy.optimize.milp``
under a time limit and reports its optimality gap. The lower bound quoted beside the
cost is the required agent-hours (after shrinkage) at each group's rate: no schedule
can cost less.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy import optimize, sparse

from simulation.errors import ScenarioError

__all__ = [
    "Requirements",
    "ScheduleResult",
    "ShiftSpec",
    "load_shift_spec",
    "solve_schedule",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hhmm(text: str) -> float:
    h, _, m = str(text).partition(":")
    v = int(h) + int(m or 0) / 60.0
    if not 0 <= v <= 24:
        raise ValueError(f"{text!r} is not a time of day HH:MM")
    return v


class Break(_Model):
    """A break of ``minutes``, starting between ``earliest`` and ``latest`` hours into the
    shift (on the interval grid); ``paid`` breaks count in the paid hours."""

    minutes: Annotated[int, Field(gt=0, le=240)]
    earliest: Annotated[float, Field(ge=0)]
    latest: Annotated[float, Field(ge=0)]
    paid: bool = False

    @model_validator(mode="after")
    def _window(self) -> Break:
        if self.latest < self.earliest:
            raise ValueError("latest must not be before earliest")
        return self


class ShiftType(_Model):
    """Shifts of ``hours`` starting from ``first_start`` to ``last_start`` (HH:MM) every
    ``start_every_minutes``; ``min_heads``/``max_heads`` bound its agents per group and day."""

    name: Annotated[str, Field(min_length=1)]
    hours: Annotated[float, Field(gt=0, le=16)]
    first_start: str = "00:00"
    last_start: str = "23:59"
    start_every_minutes: Annotated[int, Field(ge=15, le=1440)] = 30
    breaks: list[Break] = []
    min_heads: Annotated[int, Field(ge=0)] = 0
    max_heads: Annotated[int, Field(ge=0)] | None = None
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = [0, 1, 2, 3, 4, 5, 6]  # Monday = 0

    @model_validator(mode="after")
    def _starts(self) -> ShiftType:
        if _hhmm(self.last_start) < _hhmm(self.first_start):
            raise ValueError("last_start is before first_start")
        for b in self.breaks:
            if b.latest * 60 + b.minutes > self.hours * 60:
                raise ValueError(f"a {b.minutes}-minute break at {b.latest} h ends after the shift")
        if self.max_heads is not None and self.max_heads < self.min_heads:
            raise ValueError("max_heads is below min_heads")
        return self

    @property
    def paid_hours(self) -> float:
        return self.hours - sum(b.minutes for b in self.breaks if not b.paid) / 60.0


class ShiftSpec(_Model):
    """What shifts may be worked, and at what cost (``cost_per_hour`` per group overrides)."""

    shifts: Annotated[list[ShiftType], Field(min_length=1)]
    shrinkage: Annotated[float, Field(ge=0, lt=1)] = 0.0
    cost_per_hour: Annotated[float, Field(ge=0)] = 30.0
    group_cost_per_hour: dict[str, Annotated[float, Field(ge=0)]] = {}
    time_limit_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    mip_gap: Annotated[float, Field(ge=0, le=1)] = 0.01

    def cost(self, group: str) -> float:
        return self.group_cost_per_hour.get(group, self.cost_per_hour)


def load_shift_spec(path: str | Path) -> ShiftSpec:
    """Read a shift specification YAML; errors name the file and field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError(str(p), "", f"cannot read: {exc}") from None
    try:
        return ShiftSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err["loc"])
        raise ScenarioError(str(p), field, err["msg"].removeprefix("Value error, ")) from None


@dataclass(frozen=True, slots=True)
class Requirements:
    """Agents needed per group and interval (before shrinkage), from day ``first_day``."""

    groups: tuple[str, ...]
    width: float  # seconds per interval
    agents: np.ndarray  # (groups, intervals)
    first_day: int = 0  # days since 1970-01-01 (weekday of day 0 and dates in schedule.csv)

    @property
    def n_intervals(self) -> int:
        return int(self.agents.shape[1])

    @property
    def days(self) -> int:
        return math.ceil(self.n_intervals * self.width / 86400.0 - 1e-9)


@dataclass(frozen=True, slots=True)
class Column:
    group: int
    day: int
    shift: int
    start: float  # hours from day 0 00:00
    breaks: tuple[float, ...]  # break start hours from day 0
    cover: np.ndarray  # interval indices on duty


@dataclass(slots=True)
class ScheduleResult:
    req: Requirements
    spec: ShiftSpec
    columns: list[Column]
    x: np.ndarray  # agents per column
    status: str
    gap: float | None
    solve_seconds: float
    lower_bound_cost: float
    dual_bound: float | None

    def cost_of(self, k: int) -> float:
        c = self.columns[k]
        return self.spec.shifts[c.shift].paid_hours * self.spec.cost(self.req.groups[c.group])

    @property
    def cost(self) -> float:
        return float(sum(self.x[k] * self.cost_of(k) for k in np.flatnonzero(self.x)))

    def on_duty(self) -> np.ndarray:
        """Agents on duty per group and interval (breaks excluded)."""
        out = np.zeros_like(self.req.agents, dtype=float)
        for k in np.flatnonzero(self.x):
            c = self.columns[k]
            out[c.group, c.cover] += self.x[k]
        return out

    def available(self) -> np.ndarray:
        """On duty after shrinkage: the agents the twin runs, in expectation (it runs the
        roster, whose shifts are left out by shrinkage whole; see ``roster._shrink``)."""
        return self.on_duty() * (1.0 - self.spec.shrinkage)

    def rows(self) -> list[dict[str, Any]]:
        from datetime import date, timedelta

        out = []
        n = 0
        for k in np.flatnonzero(self.x):
            c = self.columns[k]
            st = self.spec.shifts[c.shift]
            day = date(1970, 1, 1) + timedelta(days=self.req.first_day + c.day)
            for _ in range(int(round(self.x[k]))):
                n += 1
                out.append(
                    {
                        "shift_id": f"S{n:04d}",
                        "group": self.req.groups[c.group],
                        "date": day.isoformat(),
                        "shift": st.name,
                        "start": _fmt(c.start - 24 * c.day),
                        "end": _fmt(c.start - 24 * c.day + st.hours),
                        "breaks": " ".join(
                            f"{_fmt(b - 24 * c.day)}-{_fmt(b - 24 * c.day + br.minutes / 60)}"
                            for b, br in zip(c.breaks, st.breaks, strict=True)
                        ),
                        "paid_hours": round(st.paid_hours, 2),
                        "cost": round(self.cost_of(k), 2),
                    }
                )
        return out


def _fmt(hours: float) -> str:
    m = int(round(hours * 60))
    return f"{m // 60:02d}:{m % 60:02d}"


def build_columns(req: Requirements, spec: ShiftSpec) -> list[Column]:
    """Every allowed (group, day, shift, start, break placement) and the intervals it covers."""
    w = req.width / 3600.0
    cols: list[Column] = []
    for g, d, (s, st) in itertools.product(
        range(len(req.groups)), range(req.days), enumerate(spec.shifts)
    ):
        if (req.first_day + d + 3) % 7 not in st.weekdays:
            continue
        first, last = _hhmm(st.first_start), _hhmm(st.last_start)
        step = st.start_every_minutes / 60.0
        starts = np.arange(first, last + 1e-9, step)
        options = [np.arange(b.earliest, b.latest + 1e-9, max(w, 0.25)) for b in st.breaks]
        for start in starts:
            t0 = 24 * d + start
            for combo in itertools.product(*options) if options else [()]:
                on = np.arange(int(round(t0 / w)), int(round((t0 + st.hours) / w)))
                off: set[int] = set()
                for b_at, br in zip(combo, st.breaks, strict=True):
                    a = int(round((t0 + b_at) / w))
                    off.update(range(a, a + max(1, int(round(br.minutes / 60 / w)))))
                if len(off) < len(combo):
                    continue
                cover = np.array([i for i in on if i not in off and i < req.n_intervals], int)
                if cover.size:
                    cols.append(Column(g, d, s, t0, tuple(t0 + b for b in combo), cover))
    return cols


def solve_schedule(
    req: Requirements, spec: ShiftSpec, extra_lower: np.ndarray | None = None
) -> ScheduleResult:
    """Solve the covering program with HiGHS (``scipy.optimize.milp``)."""
    cols = build_columns(req, spec)
    if not cols:
        raise ScenarioError("shifts", "shifts", "no shift fits the requirements' days")
    n_g, n_t = req.agents.shape
    need = req.agents / (1.0 - spec.shrinkage)
    rows, cidx = [], []
    for k, c in enumerate(cols):
        rows.extend((c.group * n_t + c.cover).tolist())
        cidx.extend([k] * c.cover.size)
    a = sparse.csr_array((np.ones(len(rows)), (rows, cidx)), shape=(n_g * n_t, len(cols)))
    cost = np.array(
        [spec.shifts[c.shift].paid_hours * spec.cost(req.groups[c.group]) for c in cols]
    )
    cons = [optimize.LinearConstraint(a, lb=need.ravel() - 1e-9, ub=np.inf)]
    keys = sorted({(c.group, c.day, c.shift) for c in cols})
    kpos = {k: i for i, k in enumerate(keys)}
    heads = sparse.csr_array(
        (np.ones(len(cols)), ([kpos[(c.group, c.day, c.shift)] for c in cols], range(len(cols)))),
        shape=(len(keys), len(cols)),
    )
    lo = np.array([spec.shifts[k[2]].min_heads for k in keys], float)
    hi = np.array([spec.shifts[k[2]].max_heads or np.inf for k in keys], float)
    if (lo > 0).any() or np.isfinite(hi).any():
        cons.append(optimize.LinearConstraint(heads, lb=lo, ub=hi))
    lower = np.zeros(len(cols)) if extra_lower is None else extra_lower
    t = time.perf_counter()
    res = optimize.milp(
        cost,
        constraints=cons,
        integrality=np.ones(len(cols)),
        bounds=optimize.Bounds(lower, np.inf),
        options={"time_limit": spec.time_limit_seconds, "mip_rel_gap": spec.mip_gap},
    )
    took = time.perf_counter() - t
    if res.x is None:
        raise ScenarioError(
            "shifts", "shifts", f"no schedule covers the requirements: {res.message}"
        )
    bound = sum(
        float(need[g].sum()) * req.width / 3600.0 * spec.cost(req.groups[g]) for g in range(n_g)
    )
    return ScheduleResult(
        req=req,
        spec=spec,
        columns=cols,
        x=np.round(res.x).astype(int),
        status="optimal" if res.status == 0 else str(res.message),
        gap=getattr(res, "mip_gap", None),
        solve_seconds=took,
        lower_bound_cost=bound,
        dual_bound=getattr(res, "mip_dual_bound", None),
    )
