"""The heap event loop the simulator ran before SimPy, kept as the reference its SimPy
kernel must reproduce bit for bit (tests/test_sim_twin.py).

Original summary: the event loop replays one caller plan through the router, in simulated time.

A lean discrete-event loop (a heap of timed events plus the pre-sorted stream of
queue entries) instead of one coroutine per call: the router's decisions are the
only matching logic, and they stay the dominant cost. Arrivals stop at the
horizon; the loop then runs until every queued call is answered or abandoned.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from simulation.errors import RouterContractError
from simulation.records import AgentSpans, CallRecords
from simulation.roster import RosterAgent
from simulation.router_port import Assignment, RouterPort
from simulation.scenario import Scenario
from simulation.traffic import CallPlan

__all__ = ["RouterFactory", "simulate_plan"]

RouterFactory = Callable[[Scenario, CallPlan, list[RosterAgent]], RouterPort]

# event kinds, in tie-break order at equal times
_END_TALK, _LOGOUT, _LOGIN, _ABANDON, _CALLBACK = range(5)


def simulate_plan(
    scenario: Scenario, plan: CallPlan, roster: list[RosterAgent], router: RouterPort
) -> tuple[CallRecords, AgentSpans, int]:
    """Run one replication; return call records, agent spans and the number of events."""
    n = plan.size
    inf = math.inf
    nan = math.nan
    intents = plan.intents
    arrival = plan.arrival
    queued_at = arrival + plan.ivr
    entry_order = np.argsort(queued_at, kind="stable")
    entry_order = entry_order[~plan.contained[entry_order]].tolist()
    entry_time = queued_at.tolist()
    true_intent = plan.intent.tolist()
    routed_intent = plan.routed_intent.tolist()
    handle = plan.handle.tolist()
    patience = plan.patience.tolist()
    accepts_cb = plan.accepts_callback.tolist()
    transfer_talk = scenario.transfer_seconds
    cb_after = scenario.callbacks.offer_after_seconds if scenario.callbacks else inf

    # per agent: handle-time factor for each intent (from the lowest level in its skills)
    speed = scenario.proficiency_speed
    factor = [
        [
            speed.get(min((member.skills.get(s, 3) for s in it.required_skills), default=3), 1.0)
            for it in intents
        ]
        for member in roster
    ]

    answered_at = [nan] * n
    abandoned_at = [nan] * n
    waited = [False] * n
    handled = [0.0] * n
    transferred = [0] * n
    callback = [False] * n
    waiting = [False] * n  # in queue right now
    leg_intent = list(routed_intent)  # intent of the current leg

    n_agents = len(roster)
    busy_start: list[float] = []
    busy_end: list[float] = []
    busy_agent: list[int] = []
    login_start: list[float] = []
    login_end: list[float] = []
    login_agent: list[int] = []
    logged_in_since = [nan] * n_agents
    leaving = [False] * n_agents  # signed out, finishing the call in hand
    on_call = [-1] * n_agents
    talk_start = [0.0] * n_agents
    busy_until = [0.0] * n_agents  # end of the last wrap-up

    heap: list[tuple[float, int, int, int]] = []
    push = heapq.heappush
    pop = heapq.heappop
    seq = 0
    early = scenario.end_of_shift.no_new_calls_seconds
    span_ends = [[end for _, end in member.spans] for member in roster]
    logins = [0] * n_agents  # spans begun so far, per agent
    shift_end = [inf] * n_agents  # scheduled logout of the current span
    overtime: list[tuple[float, float, int]] = []
    for member in roster:
        for start, end in member.spans:
            push(heap, (start, _LOGIN, seq, member.index))
            seq += 1
            if end < inf:
                push(heap, (max(start, end - early), _LOGOUT, seq, member.index))
                seq += 1

    def assign(pairs: list[Assignment], now: float) -> None:
        nonlocal seq
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
            push(heap, (now + talk, _END_TALK, seq, a))
            seq += 1

    def close_login(a: int, end: float) -> None:
        end = max(end, shift_end[a])
        if end > shift_end[a]:
            overtime.append((shift_end[a], end, a))
        login_start.append(logged_in_since[a])
        login_end.append(end)
        login_agent.append(a)
        logged_in_since[a] = nan
        leaving[a] = False

    # the port's methods called per event, looked up once
    enqueue, complete, next_deadline = router.enqueue, router.complete, router.next_deadline
    add_busy_start, add_busy_end, add_busy_agent = (
        busy_start.append,
        busy_end.append,
        busy_agent.append,
    )
    tick_at = inf
    events = 0
    now = 0.0
    i_entry = 0
    n_entry = len(entry_order)
    next_entry = entry_time[entry_order[0]] if n_entry else inf
    while True:
        t_heap = heap[0][0] if heap else inf
        if tick_at < t_heap and tick_at <= next_entry:
            now = tick_at
            tick_at = inf
            assign(router.tick(now), now)
        elif next_entry < t_heap or (next_entry == inf and t_heap == inf):
            if next_entry == inf:
                break
            now = next_entry
            c = entry_order[i_entry]
            i_entry += 1
            next_entry = entry_time[entry_order[i_entry]] if i_entry < n_entry else inf
            waiting[c] = True
            pairs = enqueue(c, leg_intent[c], now)
            if pairs:
                assign(pairs, now)
            if waiting[c]:
                waited[c] = True
                p = patience[c]
                if p < inf:
                    push(heap, (now + p, _ABANDON, seq, c))
                    seq += 1
                if accepts_cb[c] and cb_after < p:
                    push(heap, (now + cb_after, _CALLBACK, seq, c))
                    seq += 1
        else:
            now, kind, _, x = pop(heap)
            if kind == _END_TALK:
                a = x
                c = on_call[a]
                on_call[a] = -1
                pairs, w = complete(c, a, now)
                handled[c] += now - talk_start[a] + w
                add_busy_start(talk_start[a])
                add_busy_end(now + w)
                add_busy_agent(a)
                busy_until[a] = now + w
                if leaving[a]:
                    close_login(a, now + w)
                if leg_intent[c] != true_intent[c]:
                    transferred[c] += 1
                    leg_intent[c] = true_intent[c]
                    waiting[c] = True  # a transferred caller waits for the right agent, patiently
                    pairs = pairs + enqueue(c, leg_intent[c], now)
                if pairs:
                    assign(pairs, now)
            elif kind == _ABANDON:
                c = x
                if waiting[c] and not callback[c] and answered_at[c] != answered_at[c]:
                    abandoned_at[c] = now
                    pairs = router.abandon(c, now)
                    waiting[c] = False
                    if pairs:
                        assign(pairs, now)
            elif kind == _CALLBACK:
                if waiting[x]:
                    callback[x] = True  # keeps the place in line, will not abandon
            elif kind == _LOGIN:
                a = x
                if leaving[a]:  # back before the last call ended: one continuous span
                    leaving[a] = False
                if logged_in_since[a] != logged_in_since[a]:
                    logged_in_since[a] = now
                shift_end[a] = span_ends[a][logins[a]]
                logins[a] += 1
                pairs = router.login(a, now)
                if pairs:
                    assign(pairs, now)
            else:  # _LOGOUT
                a = x
                router.logout(a, now)
                if on_call[a] >= 0:
                    leaving[a] = True
                elif logged_in_since[a] == logged_in_since[a]:
                    close_login(a, max(now, busy_until[a]))
        events += 1
        d = next_deadline()
        if d is not None and d < tick_at:
            tick_at = max(now, d)

    horizon = scenario.horizon_seconds
    for a in range(n_agents):  # open-ended spans: logged in to the horizon, or the last call
        if logged_in_since[a] == logged_in_since[a]:
            end = max(now, horizon, logged_in_since[a], busy_until[a])
            shift_end[a] = min(shift_end[a], end)
            close_login(a, end)
    ot = np.asarray(overtime, dtype=float).reshape(-1, 3)

    records = CallRecords(
        arrival=arrival,
        intent=plan.intent,
        queued_at=np.where(plan.contained, np.nan, queued_at),
        answered_at=np.asarray(answered_at),
        abandoned_at=np.asarray(abandoned_at),
        waited=np.asarray(waited, dtype=bool),
        handled_seconds=np.asarray(handled),
        transferred=np.asarray(transferred, dtype=np.int64),
        contained=plan.contained,
        callback=np.asarray(callback, dtype=bool),
        queue=plan.routed_intent,
        priority=plan.call_priority(),
    )
    spans = AgentSpans(
        busy_start=np.asarray(busy_start),
        busy_end=np.asarray(busy_end),
        busy_agent=np.asarray(busy_agent, dtype=np.int64),
        login_start=np.asarray(login_start),
        login_end=np.asarray(login_end),
        login_agent=np.asarray(login_agent, dtype=np.int64),
        agent_group=np.asarray([a.group for a in roster], dtype=np.int64),
        overtime_start=ot[:, 0],
        overtime_end=ot[:, 1],
        overtime_agent=ot[:, 2].astype(np.int64),
    )
    return records, spans, events
