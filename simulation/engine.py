"""The twin's event loop: one caller plan through the router, on SimPy's kernel.

Simulated time is a ``simpy.Environment``. The hot path (queue entries, ends of talk,
abandonment deadlines, logins and logouts, the router's timers) runs as plain SimPy
events with one callback each: no generator process per call, so the router's
decisions stay the dominant cost. The hottest (queue entries, ends of talk,
abandonments, router timers) go straight onto SimPy's event queue as
``Environment.schedule`` would put them, ``(time, priority, event id, event)``, but at
their absolute times; SimPy's own ``step`` runs them all. Event kinds keep a fixed order
at equal times through SimPy's event priority (ends of talk first, then logouts,
logins, abandonments, callback offers, router timers, queue entries). Nothing kept to
the end of a run is a tuple per call (busy spans are flat number lists), so the cyclic
garbage collector is not woken by the run's growth.

The same environment is the extension surface: :class:`Twin` lets SimPy processes
(from a scenario's ``events:`` list, or passed from Python) close and reopen queues,
call agents away and back, and add calls while the run goes on. Arrivals stop at the
horizon; the run then goes on until every queued call is answered or abandoned (or
nobody able to serve it is logged in any more).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Generator, Iterable
from typing import Any

import numpy as np
import simpy
from simpy.events import Event

from simulation.errors import RouterContractError, ScenarioError
from simulation.records import AgentSpans, CallRecords
from simulation.roster import RosterAgent
from simulation.router_port import Assignment, RouterPort
from simulation.scenario import Intent, Scenario
from simulation.traffic import CallPlan

__all__ = ["Process", "RouterFactory", "Twin", "simulate_plan"]

RouterFactory = Callable[[Scenario, CallPlan, list[RosterAgent]], RouterPort]

# SimPy event priorities of the hot path: the order of kinds at equal times
_END_TALK, _LOGOUT, _LOGIN, _ABANDON, _CALLBACK, _TICK, _ENTRY = range(7)


class _Due(Event):
    """A scheduled callback: already triggered, one handler, an integer payload ``x``."""

    def __init__(self, env: simpy.Environment, handler: Callable[[Any], None], x: Any) -> None:
        self.env = env
        self.callbacks = [handler]
        self._ok = True
        self._value = None
        self.x = x


class Twin:
    """What a SimPy process added to a run may do (``env`` is the run's environment).

    Agents are roster indices (:attr:`agents` lists them with group and name); queues
    are the routing queues' names; times are seconds from the start of the day.
    """

    def __init__(
        self,
        env: simpy.Environment,
        scenario: Scenario,
        plan: CallPlan,
        roster: list[RosterAgent],
        rng: np.random.Generator,
    ) -> None:
        self.env = env
        self.scenario = scenario
        self.plan = plan
        self.agents = roster
        self.rng = rng  # a stream of its own: the caller plan's draws stay common
        # bound by simulate_plan to the run's state
        self.queue_intents: Callable[[str], list[int]]
        """Intents (indices) routed to a queue; an unknown queue is a ScenarioError."""
        self.close_queue: Callable[[str], None]
        """Turn away every call that reaches the queue from now on (counted ``blocked``)."""
        self.open_queue: Callable[[str], None]
        self.agent_away: Callable[[int], None]
        """The agent stops taking calls (after the call in hand); not logged in meanwhile."""
        self.agent_back: Callable[[int], None]
        """The agent is back, and logged in if the roster has them on shift."""
        self.on_shift: Callable[[int], bool]
        """Whether the roster has the agent logged in now (away or not)."""
        self.add_call: Callable[..., int]
        """``add_call(intent, handle_seconds, patience_seconds=inf, ivr_seconds=0)``: a new
        call arrives now (its intent's priority); returns its index in the records."""

    @property
    def now(self) -> float:
        return float(self.env.now)

    @property
    def intents(self) -> tuple[Intent, ...]:
        return self.plan.intents

    def group_agents(self, group: str) -> list[int]:
        """Roster indices of a group's agents, by the group's ``name``."""
        names = [self.scenario.group_name(k) for k in range(len(self.scenario.agents))]
        if group not in names:
            raise ScenarioError(self.scenario.source, "events", f"no agent group {group!r}")
        g = names.index(group)
        return [a.index for a in self.agents if a.group == g]


Process = Callable[[Twin], Generator[Event, Any, Any]]


def simulate_plan(
    scenario: Scenario,
    plan: CallPlan,
    roster: list[RosterAgent],
    router: RouterPort,
    processes: Iterable[Process] = (),
    rng: np.random.Generator | None = None,
) -> tuple[CallRecords, AgentSpans, int]:
    """Run one replication; return call records, agent spans and the number of events.

    ``processes`` are started on the run's environment with a :class:`Twin` each.
    """
    env = simpy.Environment()
    schedule = env.schedule
    # the hottest events go straight onto SimPy's event queue, as ``env.schedule`` would
    # put them: (time, priority, event id, event), at an absolute time
    queue, eid, push = env._queue, env._eid, heapq.heappush
    inf = math.inf
    nan = math.nan
    n = plan.size
    intents = plan.intents
    arrival = plan.arrival.tolist()
    queued_at = (plan.arrival + plan.ivr).tolist()
    entry_order = np.argsort(plan.arrival + plan.ivr, kind="stable")
    entry_order = entry_order[~plan.contained[entry_order]].tolist()
    entry_time = [queued_at[c] for c in entry_order]
    true_intent = plan.intent.tolist()
    routed_intent = plan.routed_intent.tolist()
    handle = plan.handle.tolist()
    patience = plan.patience.tolist()
    accepts_cb = plan.accepts_callback.tolist()
    contained = plan.contained.tolist()
    priority = plan.call_priority().tolist()
    transfer_talk = scenario.transfer_seconds
    cb_after = scenario.callbacks.offer_after_seconds if scenario.callbacks else inf

    # per agent: handle-time factor for each intent (from the lowest level in its skills)
    speed = scenario.proficiency_speed
    factor = [
        [
            speed.get(min((m.skills.get(s, 3) for s in it.required_skills), default=3), 1.0)
            for it in intents
        ]
        for m in roster
    ]

    answered_at = [nan] * n
    abandoned_at = [nan] * n
    waited = [False] * n
    handled = [0.0] * n
    transferred = [0] * n
    callback = [False] * n
    blocked = [False] * n
    waiting = [False] * n  # in queue right now
    leg_intent = list(routed_intent)  # intent of the current leg
    queue_of = [it.queue_name for it in intents]
    closed = [False] * len(intents)  # per intent: its queue is closed (outage)

    n_agents = len(roster)
    # talk + wrap-up spans, as flat lists of numbers (no tuple per call for the collector)
    busy_start: list[float] = []
    busy_end: list[float] = []
    busy_agent: list[int] = []
    login_start: list[float] = []
    login_end: list[float] = []
    login_agent: list[int] = []
    overtime: list[tuple[float, float, int]] = []
    logged_in_since = [nan] * n_agents
    leaving = [False] * n_agents  # signed out, finishing the call in hand
    on_call = [-1] * n_agents
    talk_start = [0.0] * n_agents
    busy_until = [0.0] * n_agents  # end of the last wrap-up
    early = scenario.end_of_shift.no_new_calls_seconds
    span_ends = [[end for _, end in m.spans] for m in roster]
    logins = [0] * n_agents  # spans begun so far, per agent
    shift_end = [inf] * n_agents  # scheduled logout of the current span
    rostered = [False] * n_agents  # inside a scheduled span
    away = [False] * n_agents  # called away by a process (meeting)

    enqueue, complete, next_deadline = router.enqueue, router.complete, router.next_deadline
    timed = getattr(router, "timed", True)  # False: the router never sets a timer
    add_start, add_end, add_agent = busy_start.append, busy_end.append, busy_agent.append
    # hot-path state shared by the handlers lives in small lists (no nonlocal)
    tick_at = [inf]
    counters = [0, 0.0]  # events handled, time of the last one

    def after(now: float) -> None:
        """After each event: count it, and wake the router at its next deadline."""
        counters[0] += 1
        counters[1] = now
        if timed:
            d = next_deadline()
            if d is not None and d < tick_at[0]:
                after_deadline(now, d)

    def after_deadline(now: float, d: float) -> None:
        t = now if d < now else d
        tick_at[0] = t
        push(queue, (t, _TICK, next(eid), _Due(env, on_tick, t)))

    def assign(pairs: list[Assignment], now: float) -> None:
        for c, a in pairs:
            if on_call[a] >= 0 or not waiting[c]:
                raise RouterContractError(
                    f"router paired call {c} with agent {a} at {now}: not free"
                )
            waiting[c] = False
            on_call[a] = c
            if answered_at[c] != answered_at[c]:  # nan: first answer
                answered_at[c] = now
            if leg_intent[c] != true_intent[c]:
                talk = transfer_talk  # misrouted: talk, then transfer to the right skill
            else:
                talk = handle[c] * factor[a][leg_intent[c]]
            talk_start[a] = now
            ev = talk_end[a]
            ev.callbacks = talk_cbs
            push(queue, (now + talk, _END_TALK, next(eid), ev))

    def close_login(a: int, end: float) -> None:
        if end > shift_end[a]:
            overtime.append((shift_end[a], end, a))
        login_start.append(logged_in_since[a])
        login_end.append(end)
        login_agent.append(a)
        logged_in_since[a] = nan
        leaving[a] = False

    def enter(c: int, now: float) -> None:
        if closed[leg_intent[c]]:
            blocked[c] = True
            return
        waiting[c] = True
        pairs = enqueue(c, leg_intent[c], now)
        if pairs:
            assign(pairs, now)
        if waiting[c]:
            waited[c] = True
            p = patience[c]
            if p < inf:
                if spare:
                    ev = spare.pop()
                    ev.x = c
                    ev.callbacks = abandon_cbs
                else:
                    ev = _Due(env, on_abandon, c)
                push(queue, (now + p, _ABANDON, next(eid), ev))
            if accepts_cb[c] and cb_after < p:
                schedule(_Due(env, on_callback, c), _CALLBACK, cb_after)

    n_entry = len(entry_order)

    def on_entry(ev: _Due) -> None:
        now = env._now
        k = ev.x
        c = entry_order[k]
        k += 1
        if k < n_entry:  # the next queue entry, on the same event object
            ev.x = k
            ev.callbacks = entry_cbs
            push(queue, (entry_time[k], _ENTRY, next(eid), ev))
        it = leg_intent[c]
        if closed[it]:  # enter(c, now), inlined
            blocked[c] = True
        else:
            waiting[c] = True
            pairs = enqueue(c, it, now)
            if pairs:
                assign(pairs, now)
            if waiting[c]:
                waited[c] = True
                p = patience[c]
                if p < inf:
                    if spare:
                        aband = spare.pop()
                        aband.x = c
                        aband.callbacks = abandon_cbs
                    else:
                        aband = _Due(env, on_abandon, c)
                    push(queue, (now + p, _ABANDON, next(eid), aband))
                if accepts_cb[c] and cb_after < p:
                    schedule(_Due(env, on_callback, c), _CALLBACK, cb_after)
        counters[0] += 1  # after(now), inlined on the hottest handlers
        counters[1] = now
        if timed:
            d = next_deadline()
            if d is not None and d < tick_at[0]:
                after_deadline(now, d)

    def on_extra_entry(ev: _Due) -> None:
        now = env.now
        enter(ev.x, now)
        after(now)

    def on_end_talk(ev: _Due) -> None:
        now = env._now
        a = ev.x
        c = on_call[a]
        on_call[a] = -1
        pairs, w = complete(c, a, now)
        start, end = talk_start[a], now + w
        handled[c] += now - start + w
        add_start(start)
        add_end(end)
        add_agent(a)
        busy_until[a] = end
        if leaving[a]:
            close_login(a, end if end > shift_end[a] or away[a] else shift_end[a])
        if leg_intent[c] != true_intent[c]:
            transferred[c] += 1
            leg_intent[c] = true_intent[c]
            waiting[c] = True  # a transferred caller waits for the right agent, patiently
            pairs = pairs + enqueue(c, leg_intent[c], now)
        if pairs:
            assign(pairs, now)
        counters[0] += 1  # after(now), inlined on the hottest handlers
        counters[1] = now
        if timed:
            d = next_deadline()
            if d is not None and d < tick_at[0]:
                after_deadline(now, d)

    def on_abandon(ev: _Due) -> None:
        now = env._now
        c = ev.x
        spare.append(ev)
        if waiting[c] and not callback[c] and answered_at[c] != answered_at[c]:
            abandoned_at[c] = now
            pairs = router.abandon(c, now)
            waiting[c] = False
            if pairs:
                assign(pairs, now)
        counters[0] += 1  # after(now), inlined on the hottest handlers
        counters[1] = now
        if timed:
            d = next_deadline()
            if d is not None and d < tick_at[0]:
                after_deadline(now, d)

    def on_callback(ev: _Due) -> None:
        if waiting[ev.x]:
            callback[ev.x] = True  # keeps the place in line, will not abandon
        after(env.now)

    def sign_in(a: int, now: float) -> None:
        if leaving[a]:  # back before the last call ended: one continuous span
            leaving[a] = False
        if logged_in_since[a] != logged_in_since[a]:
            logged_in_since[a] = now
        pairs = router.login(a, now)
        if pairs:
            assign(pairs, now)

    def sign_out(a: int, now: float, until: float) -> None:
        router.logout(a, now)
        if on_call[a] >= 0:
            leaving[a] = True
        elif logged_in_since[a] == logged_in_since[a]:
            close_login(a, max(now, busy_until[a], until))

    def on_login(ev: _Due) -> None:
        now = env.now
        a = ev.x
        shift_end[a] = span_ends[a][logins[a]]
        logins[a] += 1
        rostered[a] = True
        if not away[a]:
            sign_in(a, now)
        after(now)

    def on_logout(ev: _Due) -> None:
        now = env.now
        a = ev.x
        rostered[a] = False
        if not away[a]:
            sign_out(a, now, shift_end[a])
        after(now)

    def on_tick(ev: _Due) -> None:
        now = env.now
        if ev.x != tick_at[0]:
            return  # superseded by an earlier deadline, already served
        tick_at[0] = inf
        pairs = router.tick(now)
        if pairs:
            assign(pairs, now)
        after(now)

    talk_cbs = [on_end_talk]  # SimPy only reads a callbacks list: one serves every event
    entry_cbs = [on_entry]
    abandon_cbs = [on_abandon]
    talk_end = [_Due(env, on_end_talk, a) for a in range(n_agents)]
    spare: list[_Due] = []  # abandonment events already fired, to reuse
    for m in roster:
        for start, end in m.spans:
            schedule(_Due(env, on_login, m.index), _LOGIN, start)
            if end < inf:
                schedule(_Due(env, on_logout, m.index), _LOGOUT, max(start, end - early))
    if n_entry:
        push(queue, (entry_time[0], _ENTRY, next(eid), _Due(env, on_entry, 0)))

    procs = list(processes)
    if procs:
        twin = Twin(env, scenario, plan, roster, rng or np.random.default_rng(0))

        def queue_intents(name: str) -> list[int]:
            ks = [k for k, q in enumerate(queue_of) if q == name]
            if not ks:
                raise ScenarioError(scenario.source, "events", f"no queue {name!r}")
            return ks

        def close_queue(name: str) -> None:
            for k in queue_intents(name):
                closed[k] = True

        def open_queue(name: str) -> None:
            for k in queue_intents(name):
                closed[k] = False

        def agent_away(a: int) -> None:
            if away[a]:
                return
            away[a] = True
            if rostered[a] and not leaving[a]:
                sign_out(a, env.now, env.now)
                after(env.now)

        def agent_back(a: int) -> None:
            if not away[a]:
                return
            away[a] = False
            if rostered[a]:
                sign_in(a, env.now)
                after(env.now)

        def add_call(
            intent: int,
            handle_seconds: float,
            patience_seconds: float = inf,
            ivr_seconds: float = 0.0,
        ) -> int:
            now = float(env.now)
            c = len(arrival)
            arrival.append(now)
            queued_at.append(now + ivr_seconds)
            for lst, v in (
                (true_intent, intent),
                (routed_intent, intent),
                (leg_intent, intent),
                (handle, handle_seconds),
                (patience, patience_seconds),
                (accepts_cb, False),
                (contained, False),
                (answered_at, nan),
                (abandoned_at, nan),
                (waited, False),
                (handled, 0.0),
                (transferred, 0),
                (callback, False),
                (blocked, False),
                (waiting, False),
                (priority, intents[intent].priority),
            ):
                lst.append(v)
            router.add_call(c, intent)
            schedule(_Due(env, on_extra_entry, c), _ENTRY, ivr_seconds)
            return c

        twin.queue_intents, twin.close_queue, twin.open_queue = (
            queue_intents,
            close_queue,
            open_queue,
        )
        twin.agent_away, twin.agent_back = agent_away, agent_back
        twin.on_shift = rostered.__getitem__
        twin.add_call = add_call
        for proc in procs:
            env.process(proc(twin))
        # planners' processes may run forever: stop when the twin's own events are over
        # (checked hour by hour of simulated time, past the horizon)
        t, horizon = 0.0, scenario.horizon_seconds
        while t < horizon or any(type(item[3]) is _Due for item in env._queue):
            t += 3600.0
            if env.peek() == inf:
                break
            env.run(until=t)
    else:
        env.run()
    now = counters[1]

    horizon = scenario.horizon_seconds
    for a in range(n_agents):  # open-ended spans: logged in to the horizon, or the last call
        if logged_in_since[a] == logged_in_since[a]:
            end = max(now, horizon, logged_in_since[a], busy_until[a])
            shift_end[a] = min(shift_end[a], end)
            close_login(a, end)
    ot = np.asarray(overtime, dtype=float).reshape(-1, 3)

    records = CallRecords(
        arrival=np.asarray(arrival),
        intent=np.asarray(true_intent, dtype=np.int64),
        queued_at=np.where(np.asarray(contained, dtype=bool), np.nan, np.asarray(queued_at)),
        answered_at=np.asarray(answered_at),
        abandoned_at=np.asarray(abandoned_at),
        waited=np.asarray(waited, dtype=bool),
        handled_seconds=np.asarray(handled),
        transferred=np.asarray(transferred, dtype=np.int64),
        contained=np.asarray(contained, dtype=bool),
        callback=np.asarray(callback, dtype=bool),
        blocked=np.asarray(blocked, dtype=bool),
        queue=np.asarray(routed_intent, dtype=np.int64),
        priority=np.asarray(priority, dtype=np.int64),
    )
    spans = AgentSpans(
        busy_start=np.asarray(busy_start, dtype=float),
        busy_end=np.asarray(busy_end, dtype=float),
        busy_agent=np.asarray(busy_agent, dtype=np.int64),
        login_start=np.asarray(login_start),
        login_end=np.asarray(login_end),
        login_agent=np.asarray(login_agent, dtype=np.int64),
        agent_group=np.asarray([a.group for a in roster], dtype=np.int64),
        overtime_start=ot[:, 0],
        overtime_end=ot[:, 1],
        overtime_agent=ot[:, 2].astype(np.int64),
    )
    events = counters[0]
    # The handlers refer to each other and to their callback lists: break those cycles, so
    # that the run's state (router included) is freed now, not by the cyclic collector.
    for lst in (talk_cbs, entry_cbs, abandon_cbs, talk_end, spare):
        lst.clear()
    handlers: list[Any] = [after, after_deadline, assign, close_login, enter, on_entry]
    handlers += [on_extra_entry, on_end_talk, on_abandon, on_callback, sign_in, sign_out]
    for handler in (*handlers, on_login, on_logout, on_tick):
        for cell in handler.__closure__ or ():
            cell.cell_contents = None
    return records, spans, events
