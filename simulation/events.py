"""A scenario's ``events:`` as SimPy processes over the running twin.

Each planned event (an outage closing a queue, a campaign adding calls, agents called to
a meeting) becomes a generator process on the run's ``simpy.Environment``, acting
through :class:`~simulation.engine.Twin`: the same surface a planner's own Python
processes use (``run_scenario(..., processes=[...])``).
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Any

import numpy as np

from simulation.distributions import sample
from simulation.engine import Process, Twin
from simulation.errors import ScenarioError
from simulation.scenario import Campaign, Meeting, Outage, Scenario
from simulation.times import Origin, parse_instant
from simulation.traffic import CallPlan, arrival_rates_per_interval

__all__ = ["check_events", "scenario_processes"]


def _at(sc: Scenario, field: str, value: Any, origin: Origin) -> float:
    try:
        return parse_instant(value, origin)
    except ValueError as exc:
        raise ScenarioError(sc.source, field, str(exc)) from None


def _outage(ev: Outage, start: float) -> Process:
    def run(twin: Twin) -> Generator:
        yield twin.env.timeout(max(0.0, start - twin.now))
        twin.close_queue(ev.queue)
        yield twin.env.timeout(ev.minutes * 60.0)
        twin.open_queue(ev.queue)

    return run


def _meeting(ev: Meeting, start: float) -> Process:
    def run(twin: Twin) -> Generator:
        members = twin.group_agents(ev.group)
        yield twin.env.timeout(max(0.0, start - twin.now))
        present = [a for a in members if twin.on_shift(a)]
        called = present[: ev.agents] if ev.agents is not None else present
        for a in called:
            twin.agent_away(a)
        yield twin.env.timeout(ev.minutes * 60.0)
        for a in called:
            twin.agent_back(a)

    return run


def _base_rates(twin: Twin) -> tuple[float, np.ndarray]:
    """Calls per hour of each interval: the scenario's rates, or the replayed log's counts."""
    sc = twin.scenario
    if sc.arrivals.replay is None:
        return arrival_rates_per_interval(sc)
    width = sc.interval_seconds
    counts = np.bincount((twin.plan.arrival // width).astype(np.int64), minlength=sc.n_intervals)[
        : sc.n_intervals
    ]
    return width, counts * 3600.0 / width


def _campaign(ev: Campaign, start: float, end: float) -> Process:
    def run(twin: Twin) -> Generator:
        sc, rng = twin.scenario, twin.rng
        names = [it.name for it in twin.intents]
        ks = [names.index(n) for n in (ev.intents or names)]
        shares = np.asarray([twin.intents[k].share for k in ks], dtype=float)
        if sc.arrivals.replay is not None:  # the log's own mix
            counts = np.bincount(twin.plan.intent, minlength=len(names))[ks].astype(float)
            shares = counts if counts.sum() else shares
        shares = shares / shares.sum()
        all_shares = np.asarray([it.share for it in twin.intents], dtype=float)
        part = float(all_shares[ks].sum() / all_shares.sum())
        if sc.arrivals.replay is not None:
            total = np.bincount(twin.plan.intent, minlength=len(names))
            part = float(total[ks].sum() / max(1, total.sum()))
        width, rates = _base_rates(twin)
        extra = (ev.multiply - 1.0) * part * rates  # added calls per hour, per interval
        top = float(extra.max()) if extra.size else 0.0
        stop = min(end, sc.horizon_seconds)
        yield twin.env.timeout(max(0.0, start - twin.now))
        if top <= 0:
            return
        while True:
            gap = rng.exponential(3600.0 / top)
            if twin.now + gap >= stop:
                return
            yield twin.env.timeout(gap)
            j = min(int(twin.now // width), extra.size - 1)
            if rng.random() * top > extra[j]:
                continue  # thinning: this interval's rate is below the peak
            k = ks[int(rng.choice(len(ks), p=shares))]
            it = twin.intents[k]
            law = it.handle_time or sc.handle_time
            if law is not None:
                talk = float(sample(law, rng, 1)[0])
            else:  # a replay intent: resample a recorded handle time of that intent
                pool = twin.plan.handle[twin.plan.intent == k]
                talk = float(pool[int(rng.integers(pool.size))]) if pool.size else 0.0
            patience = float(sample(sc.patience_for(it, it.priority), rng, 1)[0])
            twin.add_call(k, talk, patience, it.ivr_seconds)

    return run


def scenario_processes(sc: Scenario, origin: Origin | None = None) -> list[Process]:
    """The SimPy processes of a scenario's ``events:`` list (times from ``origin``)."""
    origin = origin or Origin(sc.start_at)
    out: list[Process] = []
    for k, ev in enumerate(sc.events or ()):
        field = f"events.{k}"
        start = _at(sc, f"{field}.at", ev.at, origin)
        if isinstance(ev, Outage):
            out.append(_outage(ev, start))
        elif isinstance(ev, Meeting):
            out.append(_meeting(ev, start))
        else:
            end = math.inf if ev.until is None else _at(sc, f"{field}.until", ev.until, origin)
            if end <= start:
                raise ScenarioError(sc.source, f"{field}.until", "must be after at")
            out.append(_campaign(ev, start, end))
    return out


def check_events(sc: Scenario, plan: CallPlan) -> None:
    """Names in ``events:`` must exist (checked before any SimPy process runs)."""
    queues = {it.queue_name for it in plan.intents}
    intents = {it.name for it in plan.intents}
    groups = {sc.group_name(k) for k in range(len(sc.agents))}
    for k, ev in enumerate(sc.events or ()):
        field = f"events.{k}"
        if isinstance(ev, Outage) and ev.queue not in queues:
            raise ScenarioError(
                sc.source, f"{field}.queue", f"no queue {ev.queue!r} ({sorted(queues)})"
            )
        if isinstance(ev, Meeting) and ev.group not in groups:
            raise ScenarioError(
                sc.source, f"{field}.group", f"no agent group {ev.group!r} ({sorted(groups)})"
            )
        if isinstance(ev, Campaign) and ev.intents:
            unknown = sorted(set(ev.intents) - intents)
            if unknown:
                raise ScenarioError(sc.source, f"{field}.intents", f"unknown intent(s) {unknown}")
