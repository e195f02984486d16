"""Who calls, when, why, for how long and how patiently: one replication's caller plan.

Drawing the whole plan up front (vectorised) keeps the event loop lean and makes the
random streams independent of routing decisions (common random numbers across
staffing alternatives with the same seed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulation.distributions import sample, sample_above
from simulation.errors import ScenarioError
from simulation.scenario import Intent, Scenario
from simulation.times import Origin, parse_instant

__all__ = [
    "CallPlan",
    "arrival_rates_per_interval",
    "draw_plan",
    "read_call_log",
    "read_scenario_log",
]


@dataclass(frozen=True, slots=True)
class CallPlan:
    """Caller attributes, one array entry per call, sorted by arrival time (seconds)."""

    intents: tuple[Intent, ...]
    arrival: np.ndarray  # float, system arrival
    intent: np.ndarray  # int, true intent
    routed_intent: np.ndarray  # int, intent the IVR recognised (differs => transfer)
    handle: np.ndarray  # float, talk seconds at proficiency speed 1.0
    patience: np.ndarray  # float, inf = never hangs up
    contained: np.ndarray  # bool, resolved in the IVR
    ivr: np.ndarray  # float, seconds spent in the IVR before queueing
    accepts_callback: np.ndarray  # bool
    priority: np.ndarray | None = None  # int per call (None: each intent's priority)
    dropped: int = 0  # replayed calls after the horizon, left out on request

    def call_priority(self) -> np.ndarray:
        """Each call's priority (the log's column, else its routed intent's)."""
        if self.priority is not None:
            return self.priority
        prio = np.asarray([it.priority for it in self.intents], dtype=np.int64)
        return prio[self.routed_intent] if self.size else np.zeros(0, np.int64)

    @property
    def size(self) -> int:
        return int(self.arrival.size)


def arrival_rates_per_interval(scenario: Scenario) -> tuple[float, np.ndarray]:
    """(interval seconds, calls per hour of each interval covering the horizon)."""
    arr = scenario.arrivals
    width = 60.0 * arr.interval_minutes
    n = max(1, math.ceil(scenario.horizon_seconds / width - 1e-9))
    if arr.rate_per_hour is not None:
        return width, np.full(n, float(arr.rate_per_hour))
    assert arr.rates_per_hour is not None
    rates = np.asarray(arr.rates_per_hour, dtype=float)
    if rates.size < n:
        raise ScenarioError(
            scenario.source,
            "arrivals.rates_per_hour",
            f"{rates.size} rates for {n} intervals of {arr.interval_minutes} min",
        )
    return width, rates[:n]


def _poisson_arrivals(scenario: Scenario, rng: np.random.Generator) -> np.ndarray:
    width, rates = arrival_rates_per_interval(scenario)
    horizon = scenario.horizon_seconds
    starts = np.arange(rates.size) * width
    ends = np.minimum(starts + width, horizon)
    counts = rng.poisson(rates * (ends - starts) / 3600.0)
    total = int(counts.sum())
    offsets = rng.random(total) * np.repeat(ends - starts, counts)
    times = np.repeat(starts, counts) + offsets
    times.sort()
    return times


_OPTIONAL_FLOATS = ("patience_seconds", "patience_at_least_seconds", "ivr_seconds")


def _float_cell(row: dict[str, str], col: str, at: str, default: float = math.nan) -> float:
    text = (row.get(col) or "").strip()
    if not text:
        return default
    try:
        v = float(text)
    except ValueError:
        raise ScenarioError(at, col, f"not a number: {text!r}") from None
    if not v >= 0:
        raise ScenarioError(at, col, f"must be >= 0, got {text!r}")
    return v


def read_call_log(path: Path, origin: Origin | None = None) -> dict[str, np.ndarray]:
    """Read a replay CSV into arrays (see :class:`~simulation.scenario.Arrivals`).

    Keys: arrival, intent (names), handle, patience and patience_min (nan = not
    given), ivr (nan = the intent's), priority (int; ``has_priority`` says whether the
    column exists). ISO timestamps count from ``origin`` (default: the first row's
    midnight).
    """
    where = str(path)
    origin = origin or Origin()
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(where, "", f"cannot read call log: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        cols = set(reader.fieldnames or ())
        for need in ("arrival_time", "handle_seconds"):
            if need not in cols:
                raise ScenarioError(where, need, "column missing")
        if "intent" not in cols and "skills" not in cols:
            raise ScenarioError(where, "intent", "column missing (or give skills)")
        arrival, intent, talk, prio = [], [], [], []
        extra: dict[str, list[float]] = {c: [] for c in _OPTIONAL_FLOATS}
        for row_no, row in enumerate(reader, start=2):
            at = f"{where}:{row_no}"
            try:
                arrival.append(parse_instant(row["arrival_time"] or "", origin))
            except ValueError as exc:
                raise ScenarioError(at, "arrival_time", str(exc)) from None
            intent.append((row.get("intent") or row.get("skills") or "").strip())
            if not (row.get("handle_seconds") or "").strip():
                raise ScenarioError(at, "handle_seconds", "empty")
            talk.append(_float_cell(row, "handle_seconds", at))
            for c in _OPTIONAL_FLOATS:
                extra[c].append(_float_cell(row, c, at))
            p = (row.get("priority") or "").strip()
            try:
                prio.append(int(p) if p else 0)
            except ValueError:
                raise ScenarioError(at, "priority", f"not an integer: {p!r}") from None
    order = np.argsort(np.asarray(arrival, dtype=float), kind="stable")
    arr = np.asarray(arrival, dtype=float)[order]
    if arr.size:
        arr = arr - min(0.0, float(arr[0]))
    return {
        "arrival": arr,
        "intent": np.asarray(intent, dtype=object)[order],
        "handle": np.asarray(talk, dtype=float)[order],
        "patience": np.asarray(extra["patience_seconds"], dtype=float)[order],
        "patience_min": np.asarray(extra["patience_at_least_seconds"], dtype=float)[order],
        "ivr": np.asarray(extra["ivr_seconds"], dtype=float)[order],
        "priority": np.asarray(prio, dtype=np.int64)[order],
        "has_priority": np.asarray("priority" in cols),
    }


def read_scenario_log(scenario: Scenario) -> dict:
    """The scenario's replay log, checked against its horizon (``origin``: time 0's instant)."""
    assert scenario.arrivals.replay is not None
    path = scenario.resolve(scenario.arrivals.replay)
    origin = Origin(scenario.start_at)
    log: dict = read_call_log(path, origin)
    log["origin"] = origin.at
    late = log["arrival"] >= scenario.horizon_seconds
    n_late = int(late.sum())
    if n_late and not scenario.arrivals.drop_after_horizon:
        last = float(log["arrival"].max()) / 3600.0
        raise ScenarioError(
            scenario.source,
            "duration_hours",
            f"{n_late} call(s) of {path} arrive after duration_hours={scenario.duration_hours:g}"
            f" (the last at {last:.2f} h): raise duration_hours to {math.ceil(last + 1e-9)},"
            " or set arrivals.drop_after_horizon: true to leave them out",
        )
    return log


def _patience(
    scenario: Scenario,
    intents: tuple[Intent, ...],
    intent: np.ndarray,
    priority: np.ndarray,
    rng: np.random.Generator,
    todo: np.ndarray,
    lower: np.ndarray | None = None,
) -> np.ndarray:
    """Patience of the calls in ``todo`` (bool mask), by intent and priority class
    (above ``lower`` where it is finite: censored callers)."""
    out = np.full(intent.size, math.nan)
    laws = (
        [scenario.patience_for(intents[k], int(p)) for k, p in zip(intent, priority, strict=True)]
        if (scenario.patience_by_priority or any(it.patience for it in intents))
        else None
    )
    groups: dict[int, tuple[object, list[int]]] = {}
    if laws is None:
        groups[0] = (scenario.patience, np.flatnonzero(todo).tolist())
    else:
        for i in np.flatnonzero(todo).tolist():
            groups.setdefault(id(laws[i]), (laws[i], []))[1].append(i)
    for law, idx_list in groups.values():
        idx = np.asarray(idx_list, dtype=np.int64)
        if lower is None:
            out[idx] = sample(law, rng, idx.size)  # type: ignore[arg-type]
            continue
        lo = lower[idx]
        cens = np.isfinite(lo)
        free = idx[~cens]
        out[free] = sample(law, rng, free.size)  # type: ignore[arg-type]
        if cens.any():
            out[idx[cens]] = sample_above(law, rng, lo[cens])  # type: ignore[arg-type]
    return out


def replay_intents(scenario: Scenario, names: np.ndarray) -> tuple[Intent, ...]:
    """Intents of a replay: the scenario's, plus one per unknown log name (skills split on ';')."""
    known = {i.name: i for i in scenario.intents or ()}
    out = list(known.values())
    for name in dict.fromkeys(str(n) for n in names):
        if name not in known:
            skills = [s for s in name.split(";") if s] or ["default"]
            out.append(Intent(name=name, skills=skills))
            known[name] = out[-1]
    return tuple(out)


def _through_flow(
    scenario: Scenario,
    intents: tuple[Intent, ...],
    intent: np.ndarray,
    arrival: np.ndarray,
    journeys: list,
    rng: np.random.Generator,
) -> tuple[tuple[Intent, ...], np.ndarray, np.ndarray, np.ndarray]:
    """IVR seconds, containment and the queue reached, from journeys through the real flow.

    A queue no intent uses (the flow's safe path, say) gets an intent of its own, needing
    the skills the flow asked for, so that the router sees the queue the flow chose.
    """
    n = arrival.size
    width = scenario.interval_seconds
    last = scenario.n_intervals - 1
    which = np.minimum((arrival // width).astype(np.int64), last).tolist()
    pick = rng.random(n).tolist()
    by_queue = {it.queue_name: k for k, it in enumerate(intents)}
    extra: list[Intent] = []
    ivr = np.zeros(n)
    contained = np.zeros(n, dtype=bool)
    routed = np.zeros(n, dtype=np.int64)
    for i, (k, j, u) in enumerate(zip(intent.tolist(), which, pick, strict=True)):
        pool = journeys[k][j]
        jr = pool[int(u * len(pool))]
        ivr[i] = jr.ivr_seconds
        if jr.queue is None:
            contained[i] = True
            routed[i] = k
            continue
        q = by_queue.get(jr.queue)
        if q is None:
            skills = [s for s, _ in jr.skills] or [intents[k].required_skills[0]]
            extra.append(
                Intent(name=f"queue:{jr.queue}", share=1e-9, skills=skills, queue=jr.queue)
            )
            q = by_queue[jr.queue] = len(intents) + len(extra) - 1
        routed[i] = q
    return intents + tuple(extra), ivr, contained, routed


def draw_plan(
    scenario: Scenario,
    rng: np.random.Generator,
    log: dict[str, np.ndarray] | None = None,
    journeys: list | None = None,
) -> CallPlan:
    """Draw one replication's callers (``log``: a call log already read, for replays;
    ``journeys``: IVR journeys per (intent, interval) when the scenario has a ``flow``)."""
    call_ivr = None
    priority = None
    dropped = 0
    if scenario.arrivals.replay is not None:
        if log is None:
            log = read_scenario_log(scenario)
        intents = replay_intents(scenario, log["intent"])
        index = {it.name: k for k, it in enumerate(intents)}
        keep = log["arrival"] < scenario.horizon_seconds
        dropped = int((~keep).sum())
        arrival = log["arrival"][keep]
        intent = np.fromiter(
            (index[str(x)] for x in log["intent"][keep]), dtype=np.int64, count=int(keep.sum())
        )
        handle = log["handle"][keep].copy()
        if bool(log["has_priority"]):
            priority = log["priority"][keep].copy()
        by_intent = np.asarray([it.priority for it in intents], dtype=np.int64)
        prio = priority if priority is not None else by_intent[intent]
        patience = log["patience"][keep].copy()
        missing = np.isnan(patience)
        lower = log["patience_min"][keep]
        lower = np.where(np.isnan(lower), -np.inf, lower)
        drawn = _patience(scenario, intents, intent, prio, rng, missing, lower)
        patience[missing] = drawn[missing]
        call_ivr = log["ivr"][keep]
    else:
        intents = tuple(scenario.intent_list)
        arrival = _poisson_arrivals(scenario, rng)
        n = arrival.size
        shares = np.array([i.share for i in intents], dtype=float)
        intent = (
            rng.choice(len(intents), size=n, p=shares / shares.sum())
            if len(intents) > 1
            else np.zeros(n, dtype=np.int64)
        )
        handle = np.empty(n)
        for k, it in enumerate(intents):
            mask = intent == k
            handle[mask] = sample(it.handle_time or scenario.handle_time, rng, int(mask.sum()))
        prio = np.asarray([it.priority for it in intents], dtype=np.int64)[intent]
        patience = _patience(scenario, intents, intent, prio, rng, np.ones(n, dtype=bool))
    n = arrival.size
    ivr = np.zeros(n)
    contained = np.zeros(n, dtype=bool)
    routed = intent.copy()
    u_contain = rng.random(n)
    u_recog = rng.random(n)
    for k, it in enumerate(intents):
        mask = intent == k
        ivr[mask] = it.ivr_seconds
        contained[mask] = u_contain[mask] < it.containment
        wrong = mask & (u_recog >= it.recognition_accuracy) & ~contained
        if wrong.any() and len(intents) > 1:
            others = [j for j in range(len(intents)) if j != k]
            weights = np.array([intents[j].share for j in others], dtype=float)
            routed[wrong] = np.asarray(others)[
                rng.choice(len(others), size=int(wrong.sum()), p=weights / weights.sum())
            ]
    if call_ivr is not None:
        given = ~np.isnan(call_ivr)
        ivr[given] = call_ivr[given]
    if scenario.flow is not None and journeys is not None and n:
        intents, ivr, contained, routed = _through_flow(
            scenario, intents, intent, arrival, journeys, rng
        )
    cb = scenario.callbacks
    accepts = rng.random(n) < (cb.accept_share if cb else 0.0)
    return CallPlan(
        intents,
        arrival,
        intent,
        routed,
        handle,
        patience,
        contained,
        ivr,
        accepts,
        priority,
        dropped,
    )
