"""Who calls, when, why, for how long and how patiently: one replication's caller plan.

Drawing the whole plan up front (vectorised) keeps the event loop lean and makes the
random streams independent of routing decisions (common random numbers across
staffing alternatives with the same seed).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from routing.textfile import NotUTF8Error, open_utf8_text
from simulation.distributions import sample
from simulation.errors import ScenarioError, SimulationError
from simulation.scenario import Intent, Scenario

__all__ = ["CallPlan", "arrival_rates_per_interval", "draw_plan", "read_call_log"]


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


def _parse_time(text: str, origin: list[datetime | None], where: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise ScenarioError(where, "arrival_time", f"not seconds nor ISO 8601: {text!r}") from None
    start = origin[0]
    if start is None:
        start = origin[0] = stamp.replace(hour=0, minute=0, second=0, microsecond=0)
    return (stamp - start).total_seconds()


def read_call_log(path: Path) -> dict[str, np.ndarray]:
    """Read a call-log CSV into arrays: arrival, intent names, handle, patience (nan = none)."""
    where = str(path)
    try:
        handle = open_utf8_text(path)
    except OSError as exc:
        raise ScenarioError(where, "", f"cannot read call log: {exc.strerror}") from None
    except NotUTF8Error as exc:
        raise SimulationError(str(exc)) from None
    with handle:
        reader = csv.DictReader(handle)
        cols = set(reader.fieldnames or ())
        for need in ("arrival_time", "handle_seconds"):
            if need not in cols:
                raise ScenarioError(where, need, "column missing")
        if "intent" not in cols and "skills" not in cols:
            raise ScenarioError(where, "intent", "column missing (or give skills)")
        origin: list[datetime | None] = [None]
        arrival, intent, talk, patience = [], [], [], []
        for row_no, row in enumerate(reader, start=2):
            at = f"{where}:{row_no}"
            arrival.append(_parse_time(row["arrival_time"], origin, at))
            intent.append((row.get("intent") or row.get("skills") or "").strip())
            try:
                talk.append(float(row["handle_seconds"]))
                p = (row.get("patience_seconds") or "").strip()
                patience.append(float(p) if p else math.nan)
            except ValueError as exc:
                raise ScenarioError(at, "handle_seconds/patience_seconds", str(exc)) from None
            if talk[-1] < 0:
                raise ScenarioError(at, "handle_seconds", "must be >= 0")
    order = np.argsort(np.asarray(arrival, dtype=float), kind="stable")
    arr = np.asarray(arrival, dtype=float)[order]
    if arr.size:
        arr = arr - min(0.0, float(arr[0]))
    return {
        "arrival": arr,
        "intent": np.asarray(intent, dtype=object)[order],
        "handle": np.asarray(talk, dtype=float)[order],
        "patience": np.asarray(patience, dtype=float)[order],
    }


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
    if scenario.arrivals.replay is not None:
        if log is None:
            log = read_call_log(scenario.resolve(scenario.arrivals.replay))
        intents = replay_intents(scenario, log["intent"])
        index = {it.name: k for k, it in enumerate(intents)}
        keep = log["arrival"] < scenario.horizon_seconds
        arrival = log["arrival"][keep]
        intent = np.fromiter(
            (index[str(x)] for x in log["intent"][keep]), dtype=np.int64, count=int(keep.sum())
        )
        handle = log["handle"][keep].copy()
        patience = log["patience"][keep].copy()
        missing = np.isnan(patience)
        patience[missing] = sample(scenario.patience, rng, int(missing.sum()))
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
        patience = sample(scenario.patience, rng, n)
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
    if scenario.flow is not None and journeys is not None and n:
        intents, ivr, contained, routed = _through_flow(
            scenario, intents, intent, arrival, journeys, rng
        )
    cb = scenario.callbacks
    accepts = rng.random(n) < (cb.accept_share if cb else 0.0)
    return CallPlan(intents, arrival, intent, routed, handle, patience, contained, ivr, accepts)
