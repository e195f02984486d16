"""The router: agents, calls, reservations, relaxation and decisions, all pure.

Time is an argument (float seconds) of every method; nothing reads a clock.
Methods that may place calls return the routing decisions they made
(``offered`` or ``queued``); every decision and call event is also kept for
:meth:`Router.explain`. See the package docstring for the whole API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from routing import snapshot
from routing import stats as stats_mod
from routing.batch import solve_batch
from routing.errors import InvalidTransitionError
from routing.index import Group
from routing.models import (
    PRESENCE_STATES,
    Agent,
    AgentState,
    Call,
    CallState,
    Candidate,
    Decision,
    DecisionKind,
    SlotState,
)
from routing.scoring import is_eligible
from routing.state import RouterState
from routing.stats import QueueStats
from routing.timers import OFFER, OVERFLOW, RELAX, WRAP, Timer

_TOP_K = 3  # candidates kept in a batch decision record (single decisions: chosen + runner-up)
_OFFERED, _QUEUED = DecisionKind.OFFERED, DecisionKind.QUEUED
_AVAILABLE, _BUSY = AgentState.AVAILABLE, AgentState.BUSY
# enum members as module constants on the hot paths (an Enum attribute lookup costs
# about ten times a global one)
_WAITING, _RESERVED_CALL, _CONNECTED, _COMPLETED, _ABANDONED = (
    CallState.WAITING,
    CallState.RESERVED,
    CallState.CONNECTED,
    CallState.COMPLETED,
    CallState.ABANDONED,
)
_SLOT_RESERVED, _SLOT_BUSY, _SLOT_WRAP = SlotState.RESERVED, SlotState.BUSY, SlotState.WRAP_UP
# a brief decision (record_decisions=False) is built as a plain tuple: seq, time, call,
# queue, kind, trigger, agent, then the defaults of the other fields
_new_tuple = tuple.__new__
_DEFAULTS = tuple(Decision._field_defaults[f] for f in Decision._fields[7:])
_SLOT_STATE = {
    SlotState.RESERVED: AgentState.RESERVED,
    SlotState.BUSY: AgentState.BUSY,
    SlotState.WRAP_UP: AgentState.WRAP_UP,
}


class Router(RouterState):
    """Skills-based router over one policy. Not thread-safe: one owner at a time.

    Its state (agents, calls, indexes, counters) is :class:`RouterState`; this class
    holds the operations that change it."""

    def prepare(self) -> None:
        """Build the index of every queue x relaxation step x language now.

        Optional: indexes are otherwise built on first use, each with one scan
        of the agents. Call it after adding agents, before latency matters.
        """
        for name, spec in self.policy.queues.items():
            # the languages a call of this queue can carry (None if the policy lists none)
            langs: list[str | None] = (
                [spec.language] if spec.language else [*self.policy.languages] or [None]
            )
            for lang in langs:
                for step in range(len(spec.relax) + 1):
                    self._index.group(self.policy.effective(name, spec.skills, lang, step))

    # ------------------------------------------------------------------ agents
    def add_agent(self, agent: Agent, now: float) -> list[Decision]:
        """Register an agent (its ``presence`` says whether it starts available)."""
        if agent.id in self.agents:
            raise InvalidTransitionError(f"agent {agent.id}: already registered; use update_agent")
        agent.slots.clear()
        agent.wrap_until.clear()
        agent.state_since = now
        agent.idle_since = now
        agent.state = agent.presence
        self.agents[agent.id] = agent
        self._index.note_agent(agent)
        return self._agent_free(agent, now, "agent_available")

    def update_agent(
        self,
        agent_id: str,
        now: float,
        *,
        skills: Mapping[str, int] | None = None,
        languages: Iterable[str] | None = None,
        capacity: int | None = None,
    ) -> list[Decision]:
        """Change an agent's skills, languages or capacity (takes effect at once; a pending
        offer the agent no longer qualifies for is routed again)."""
        agent = self._agent(agent_id)
        new = Agent(
            id=agent.id,
            skills=dict(skills) if skills is not None else agent.skills,
            languages=frozenset(languages) if languages is not None else agent.languages,
            capacity=capacity if capacity is not None else agent.capacity,
        )
        if new.capacity < agent.load:
            raise InvalidTransitionError(
                f"agent {agent_id}: capacity {new.capacity} is below the {agent.load} calls it "
                "holds; lower it once they end"
            )
        self._index.forget_agent(agent_id)
        agent.skills, agent.languages, agent.capacity = new.skills, new.languages, new.capacity
        self._index.note_agent(agent)
        out: list[Decision] = []
        for call_id in [c for c, s in agent.slots.items() if s is SlotState.RESERVED]:
            call = self.calls[call_id]
            if not is_eligible(agent.skills, agent.languages, self._req_of(call)):
                # an offer the agent no longer qualifies for goes to someone who does
                out += self._withdraw(call, agent, now, DecisionKind.REJECTED, "skills changed")
        return out + self._agent_free(agent, now, "agent_available")

    def remove_agent(self, agent_id: str, now: float) -> None:
        """Forget an agent that holds no call."""
        agent = self._agent(agent_id)
        held = sorted(c for c, s in agent.slots.items() if s is not SlotState.WRAP_UP)
        if held:
            raise InvalidTransitionError(
                f"agent {agent_id}: still holds {', '.join(held)}; complete, reject or abandon "
                "them first"
            )
        self._index.forget_agent(agent_id, removed=True)
        del self.agents[agent_id]

    def agent_available(self, agent_id: str, now: float) -> list[Decision]:
        """The agent is ready for calls (sign-in, end of break, or wrap-up ended early).

        Returns the offers made to it (the waiting call it serves best), if any.
        """
        agent = self._agent(agent_id)
        for call_id in [c for c, s in agent.slots.items() if s is SlotState.WRAP_UP]:
            self._end_wrap(agent, call_id)
        agent.presence = AgentState.AVAILABLE
        return self._agent_free(agent, now, "agent_available")

    agent_freed = agent_available

    def agents_available(self, agent_ids: Iterable[str], now: float) -> list[Decision]:
        """Several agents become ready at once (a shift starts): solved as one assignment."""
        ids = list(dict.fromkeys(agent_ids))
        for aid in ids:
            agent = self._agent(aid)
            for call_id in [c for c, s in agent.slots.items() if s is SlotState.WRAP_UP]:
                self._end_wrap(agent, call_id)
            if agent.load == 0 and not self._index.is_free(aid):
                agent.idle_since = now
            agent.presence = AgentState.AVAILABLE
            self._refresh_state(agent, now)
        return self._batch([self.agents[a] for a in ids], now, "batch")

    def set_agent_state(self, agent_id: str, state: AgentState | str, now: float) -> list[Decision]:
        """Set an agent's presence: available, break or offline.

        Going to break or offline withdraws pending offers (their calls are
        routed again, not to this agent); calls in progress go on.
        """
        state = AgentState(state)
        if state not in PRESENCE_STATES:
            raise InvalidTransitionError(
                f"agent {agent_id}: cannot set state {state.value!r}; choose one of "
                + ", ".join(s.value for s in PRESENCE_STATES)
                + " (the others follow from calls)"
            )
        if state is AgentState.AVAILABLE:
            return self.agent_available(agent_id, now)
        agent = self._agent(agent_id)
        agent.presence = state
        self._index.agent_leaves(agent_id)
        out: list[Decision] = []
        for call_id in [c for c, s in agent.slots.items() if s is SlotState.RESERVED]:
            out += self._withdraw(
                self.calls[call_id], agent, now, DecisionKind.REJECTED, "agent went " + state.value
            )
        self._refresh_state(agent, now)
        return out

    # ------------------------------------------------------------------- calls
    def enqueue(self, call: Call, now: float) -> Decision:
        """A call enters its queue: offered to the best eligible free agent, or queued.

        Empty ``call.skills`` means the queue's skills; ``call.language`` None
        means the queue's language. The call's priority adds to the queue's.
        """
        return self._route(call, now, "enqueue", group=self._admit(call, now))

    def enqueue_brief(self, call: Call, now: float) -> str | None:
        """:meth:`enqueue` for a driver that needs only its outcome (the simulator): the id
        of the agent the call is offered to, or None when it waits. The router changes
        exactly as with ``enqueue``; with ``record_decisions`` off no decision is built."""
        g = self._admit(call, now)
        if self.record_decisions:
            return self._route(call, now, "enqueue", group=g).agent_id
        return self._route_brief(call, now, g or self._group_of(call))

    def _admit(self, call: Call, now: float) -> Group | None:
        """Register the call as waiting; returns its group when the call takes its queue's
        skills and language (the common case, cached per queue), else None."""
        cid, queue, calls = call.id, call.queue, self.calls
        if cid in calls:
            raise InvalidTransitionError(
                f"call {cid}: already in the router ({calls[cid].state.value}); "
                "use a new call id for a new leg"
            )
        spec, counters, _, _, timed = self._queue_info.get(queue) or self._info_of(queue)
        if self.record_decisions:
            self._log.reopen(cid)  # a call id used again (a new leg): its history continues
        language = call.language
        default = not call.skills and (language is None or language == spec.language)
        if not call.skills:
            call.skills = dict(spec.skills)
        if language is None:
            call.language = spec.language
        self._call_seq = seq = self._call_seq + 1
        call.seq = seq
        call.state = _WAITING
        call.enqueued_at = call.queue_entered_at = now
        call.step = 0
        call.agent_id = None
        if call.excluded:
            call.excluded = set()
        calls[cid] = call
        counters.offered += 1
        if timed:
            self._schedule_queue_timers(call)
        if not default:
            return None
        g = self._queue_groups.get(queue)  # the queue's own requirement, at step 0
        if g is None:
            g = self._queue_groups[queue] = self._group_of(call)
        return g

    def enqueue_many(self, calls: Iterable[Call], now: float) -> list[Decision]:
        """Several calls arrive at once: queued, then assigned as one optimal batch."""
        calls = list(calls)
        for call in calls:  # park them all first, then solve one assignment
            self._admit(call, now)
            self._park(call)
        decisions = self.rebalance(now, trigger="batch")
        placed = {d.call_id for d in decisions}
        for call in calls:
            if call.id not in placed:
                decisions.append(
                    self._record(
                        call,
                        now,
                        DecisionKind.QUEUED,
                        "enqueue",
                        group=self._index.waiting_group(call.id),
                    )
                )
        return decisions

    def offer_to(self, call: Call, agent_id: str, now: float, note: str = "") -> Decision:
        """A transfer to a named agent: the call enters its queue and is offered to that
        agent, who must be free to take it. A reject or timeout then routes it as usual."""
        agent = self._agent(agent_id)
        if not agent.routable:
            raise InvalidTransitionError(
                f"agent {agent_id}: is {agent.state.value}; a call can be offered to a named "
                "agent only while they are available (transfer to a queue instead)"
            )
        self._admit(call, now)
        self._reserve(call, agent, now, parked=False)
        return self._record(call, now, DecisionKind.OFFERED, "transfer", agent_id=agent_id,
                            eligible=1, note=note or f"transferred to {agent_id} by name")

    def accept(self, call_id: str, agent_id: str, now: float) -> None:
        """The agent accepted the offer: the call is connected."""
        call, agent = self._reserved(call_id, agent_id)
        self._connect(call, agent, now)
        self._refresh_state(agent, now)
        self._note(call, now, DecisionKind.ACCEPTED, "accept", agent_id)

    def _connect(self, call: Call, agent: Agent, now: float) -> None:
        """The offer of ``call`` to ``agent`` is accepted now (the agent's state is
        refreshed by the caller)."""
        call.state = _CONNECTED
        call.answered_at = now
        agent.slots[call.id] = _SLOT_BUSY
        queue = call.queue
        _, c, waiting, threshold, _ = self._queue_info.get(queue) or self._info_of(queue)
        wait = now - call.enqueued_at
        c.answered += 1
        c.wait_sum += wait
        if wait <= threshold:
            c.answered_in_sl += 1
        waiting.discard(call.id)

    def reject(self, call_id: str, agent_id: str, now: float) -> list[Decision]:
        """The agent declined: the call goes to the next best agent (never this one again)."""
        call, agent = self._reserved(call_id, agent_id)
        return self._withdraw(call, agent, now, DecisionKind.REJECTED, "reject")

    def release(self, call_id: str, agent_id: str, now: float) -> list[Decision]:
        """Take an offer back for a reason that is not the agent's (the telephony could
        not reach the call): no penalty, no exclusion; the call keeps its place."""
        call, agent = self._reserved(call_id, agent_id)
        return self._withdraw(call, agent, now, DecisionKind.REJECTED, "release",
                              exclude=False)

    def timeout(self, call_id: str, agent_id: str, now: float) -> list[Decision]:
        """The offer expired (``tick`` calls this when due; a driver may call it too)."""
        call, agent = self._reserved(call_id, agent_id)
        if self.policy.reservation.agent_state_on_timeout == "break":
            agent.presence = AgentState.BREAK
        return self._withdraw(call, agent, now, DecisionKind.TIMED_OUT, "timeout")

    def complete(self, call_id: str, now: float) -> list[Decision]:
        """The conversation ended: the agent wraps up (then takes the next call)."""
        call = self.calls.get(call_id) or self._call(call_id)
        if call.state is not _CONNECTED:
            raise InvalidTransitionError(
                f"call {call_id}: is {call.state.value}, only a connected call can complete"
                + (
                    "; use abandon for a caller who hung up while waiting"
                    if call.state is CallState.WAITING
                    else ""
                )
            )
        agent = self.agents[call.agent_id]  # type: ignore[index]
        wrap = agent.wrap_up_seconds
        if wrap is None:
            wrap = self.policy.wrap_up_seconds
        talk = now - (call.answered_at or now)
        self._counters[call.queue].handle_times.append(talk + wrap)
        call.state = _COMPLETED
        call.ended_at = now
        if self.record_decisions:
            self._record(call, now, DecisionKind.COMPLETED, "complete", agent_id=agent.id)
        else:
            self._log.seq += 1
        self._finish(call)
        if wrap > 0:
            agent.slots[call_id] = _SLOT_WRAP
            agent.wrap_until[call_id] = now + wrap
            self._push_timer(now + wrap, WRAP, agent.id, call_id, now + wrap)
            self._refresh_state(agent, now)
            return []
        del agent.slots[call_id]
        return self._agent_free(agent, now, "complete")

    def abandon(self, call_id: str, now: float) -> list[Decision]:
        """The caller hung up before being connected."""
        call = self.calls.get(call_id) or self._call(call_id)
        if call.state is _CONNECTED:
            raise InvalidTransitionError(f"call {call_id}: is connected; use complete")
        self._counters[call.queue].abandoned += 1
        out: list[Decision] = []
        agent = self.agents.get(call.agent_id) if call.state is _RESERVED_CALL else None  # type: ignore[arg-type]
        self._index.call_leaves(call_id)
        call.state = _ABANDONED
        call.ended_at = now
        self._note(call, now, DecisionKind.ABANDONED, "abandon", call.agent_id)
        self._finish(call)
        if agent is not None:
            del agent.slots[call_id]
            agent.idle_since = now
            out += self._agent_free(agent, now, "abandon")
        return out

    # ------------------------------------------------------------------- time
    def next_due(self) -> float | None:
        """When the next timer (relaxation, overflow, offer timeout, wrap-up end) is due."""
        if not self._timers._heap:  # (asked after every simulated event)
            return None
        return self._timers.next_due(self._timer_valid)

    def tick(self, now: float) -> list[Decision]:
        """Run every timer due at or before ``now``, each at its own due time.

        Call it at :meth:`next_due` (the simulator) or often (the live layer).
        A late tick replays everything in between: an offer made at one due
        time may have timed out at a later one, so an ``offered`` decision in
        the list is still pending only if ``calls[call_id].agent_id`` matches.
        """
        out: list[Decision] = []
        self._index.compact()
        for due, _, kind, a, b, _stamp in self._timers.pop_due(now, self._timer_valid):
            if kind == RELAX:
                out += self._relax(self.calls[a], int(b), due)
            elif kind == OVERFLOW:
                out += self._overflow(self.calls[a], due)
            elif kind == OFFER:
                out += self.timeout(a, b, due)
            elif kind == WRAP:
                agent = self.agents[a]
                self._end_wrap(agent, b)
                out += self._agent_free(agent, due, "wrap_up_end")
        return out

    # ---------------------------------------------------------------- batches
    def rebalance(self, now: float, *, trigger: str = "batch") -> list[Decision]:
        """Assign all waiting calls to all free agents as one optimal batch."""
        free = [a for a in self.agents.values() if self._index.is_free(a.id)]
        return self._batch(free, now, trigger)

    # -------------------------------------------------------------- reading
    def explain(self, call_id: str) -> list[Decision]:
        """Every decision and event recorded for the call, oldest first."""
        return self._log.explain(call_id)

    def watch(self, listener: Callable[[Decision], None] | None) -> None:
        """Call ``listener`` with every decision and call event as it is logged (None stops).
        Only with ``record_decisions`` on; the live layer stores each one exactly once."""
        self._log.listener = listener

    def estimated_wait(
        self,
        now: float,
        *,
        call_id: str | None = None,
        queue: str | None = None,
        skills: Mapping[str, int] | None = None,
        language: str | None = None,
        priority: int = 0,
    ) -> float | None:
        """Expected seconds until an agent is offered the call.

        For a waiting ``call_id``: its remaining wait. For ``queue`` (with
        optional skills/language/priority, as the IVR would send): the wait of a
        call queued now. None when no staffed agent can ever take it.
        """
        return stats_mod.estimated_wait(
            self,
            now,
            call_id=call_id,
            queue=queue,
            skills=skills,
            language=language,
            priority=priority,
        )

    def stats(self, queue: str, now: float) -> QueueStats:
        """Real-time figures of a queue (scans the agents: O(agents))."""
        return stats_mod.queue_stats(self, queue, now)

    def reset_stats(self) -> None:
        """Start a new statistics period (e.g. at midnight); recent handle times are kept."""
        for c in self._counters.values():
            ht = c.handle_times
            c.__init__()  # type: ignore[misc]
            c.handle_times = ht

    # ------------------------------------------------------------ snapshots
    def to_dict(self, *, history: bool = True) -> dict[str, Any]:
        """The whole state as plain data (JSON-able); :meth:`from_dict` rebuilds it.
        ``history=False`` leaves out the decision log (most of the size)."""
        return snapshot.to_dict(self, history=history)

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        history_limit: int = 10_000,
        record_decisions: bool = True,
        auto_accept: bool = False,
    ) -> Router:
        """Rebuild a router from :meth:`to_dict` output (indexes and timers are re-derived;
        the options are not part of the snapshot). Offers pending in the snapshot stay
        pending under ``auto_accept`` too."""
        router = cls(
            snapshot.policy_of(data),
            history_limit=history_limit,
            record_decisions=record_decisions,
            auto_accept=auto_accept,
        )
        snapshot.restore(router, data)
        router._rearm()
        return router

    def check_invariants(self) -> None:
        """Raise AssertionError if the state is inconsistent (for tests and after a restore)."""
        snapshot.check_invariants(self)

    # ============================================================ internals
    def _rearm(self) -> None:
        """Derive indexes and timers from ``agents`` and ``calls`` (after a restore)."""
        for a in self.agents.values():
            self._index.note_agent(a)
        for c in self.calls.values():
            if c.excluded:
                self._excluded_by[c.id] = c.excluded
            if c.state in (CallState.WAITING, CallState.RESERVED):
                self._waiting[c.queue].add(c.id)
                self._schedule_queue_timers(c)
            if c.state is CallState.WAITING:
                self._park(c)
            elif c.state is CallState.RESERVED:
                offered = c.offered_at or 0.0
                self._push_timer(
                    offered + self.policy.reservation.timeout_seconds,
                    OFFER,
                    c.id,
                    c.agent_id or "",
                    offered,
                )
        for a in self.agents.values():
            for call_id, until in a.wrap_until.items():
                self._push_timer(until, WRAP, a.id, call_id, until)
            if a.routable:
                self._index.agent_joins(a)

    def _reserved(self, call_id: str, agent_id: str) -> tuple[Call, Agent]:
        call = self._call(call_id)
        if call.state is not CallState.RESERVED or call.agent_id != agent_id:
            held = (
                f"offered to {call.agent_id}"
                if call.state is CallState.RESERVED
                else call.state.value
            )
            raise InvalidTransitionError(f"call {call_id}: is {held}, not offered to {agent_id}")
        return call, self._agent(agent_id)

    def _park(self, call: Call) -> Group:
        g = self._group_of(call)
        self._waiting[call.queue].add(call.id)
        return self._index.call_waits(call.id, g, self._key(call))

    def _refresh_state(self, agent: Agent, now: float) -> None:
        slots = agent.slots
        if not slots:
            new = agent.presence
        elif len(slots) == 1:
            for only in slots.values():
                new = _SLOT_STATE[only]
        else:
            new = self._busiest(slots.values(), agent.presence)
        if new is not agent.state:
            agent.state = new
            agent.state_since = now

    @staticmethod
    def _busiest(s: Any, presence: AgentState) -> AgentState:
        if SlotState.RESERVED in s:
            new = AgentState.RESERVED
        elif SlotState.BUSY in s:
            new = AgentState.BUSY
        elif SlotState.WRAP_UP in s:
            new = AgentState.WRAP_UP
        else:
            new = presence
        return new

    def _note(
        self, call: Call, now: float, kind: DecisionKind, trigger: str, agent_id: str | None
    ) -> None:
        """An event no caller receives (accepted, completed, ...): kept for ``explain``."""
        if self.record_decisions:
            self._record(call, now, kind, trigger, agent_id=agent_id)
        else:
            self._log.seq += 1

    def _record(
        self,
        call: Call,
        now: float,
        kind: DecisionKind,
        trigger: str,
        *,
        agent_id: str | None = None,
        cands: list[Candidate] | None = None,
        eligible: int = 0,
        group: Group | None = None,
        note: str = "",
    ) -> Decision:
        seq = self._log.next_seq()
        if not self.record_decisions:
            return Decision(seq, now, call.id, call.queue, kind, trigger, agent_id)
        waited = now - call.enqueued_at
        first = cands[0] if cands else None
        second = cands[1] if cands and len(cands) > 1 else None
        d = Decision(
            seq,
            now,
            call.id,
            call.queue,
            kind,
            trigger,
            agent_id,
            first.score if first else None,
            second.agent_id if second else None,
            second.score if second else None,
            tuple(cands) if cands else (),
            eligible,
            call.step,
            self._step_label(call.queue, call.step),
            group.label if group else "",
            self.policy.queues[call.queue].priority
            + call.priority
            + (waited / self._aging if self._aging else 0.0),
            waited,
            tuple(sorted(call.excluded)) if call.excluded else (),
            note,
        )
        self._log.add(d)
        return d

    def _finish(self, call: Call) -> None:
        cid = call.id
        del self.calls[cid]
        self._reqs.pop(cid, None)
        if call.excluded:
            self._excluded_by.pop(cid, None)
        self._waiting[call.queue].discard(cid)
        self._index.forget_call(cid)
        if self.record_decisions:
            self._log.finish(cid)

    def _route(
        self, call: Call, now: float, trigger: str, note: str = "", group: Group | None = None
    ) -> Decision:
        """Offer the call to its best free eligible agent, or park it (the call is in no
        index group: new, withdrawn from an offer, or taken out by the caller). ``group``:
        the call's group, when the caller knows it."""
        g = group or self._group_of(call)
        if not self.record_decisions:  # the same choice, without the runner-up and the record
            best = self._route_brief(call, now, g)
            seq = self._log.seq
            if best is None:
                return _new_tuple(
                    Decision, (seq, now, call.id, call.queue, _QUEUED, trigger, None, *_DEFAULTS)
                )
            if self.auto_accept:
                seq -= 1  # the offer's number; the acceptance took the next one
            return _new_tuple(
                Decision, (seq, now, call.id, call.queue, _OFFERED, trigger, best, *_DEFAULTS)
            )
        req = g.req
        cands = self._index.best_two(g, call.excluded) if g.live_agents else []
        if cands:
            eligible = g.live_agents
            if call.excluded:  # free eligible agents who refused the call do not count
                eligible -= sum(
                    1
                    for a in call.excluded
                    if self._index.is_free(a)
                    and a in self.agents
                    and is_eligible(self.agents[a].skills, self.agents[a].languages, req)
                )
            self._reserve(call, self.agents[cands[0].agent_id], now, parked=False)
            d = self._record(
                call,
                now,
                DecisionKind.OFFERED,
                trigger,
                agent_id=cands[0].agent_id,
                cands=cands,
                eligible=eligible,
                group=g,
                note=note,
            )
            if self.auto_accept:
                self._record(call, now, DecisionKind.ACCEPTED, "accept", agent_id=d.agent_id)
            return d
        self._waiting[call.queue].add(call.id)
        self._index.call_waits(call.id, g, self._key(call))
        return self._record(
            call,
            now,
            DecisionKind.QUEUED,
            trigger,
            group=g,
            note=(note + "; " if note else "") + "no eligible agent free",
        )

    def _route_brief(self, call: Call, now: float, g: Group) -> str | None:
        """:meth:`_route` without decision records (``record_decisions`` off): the id of
        the agent the call is offered to, or None when it waits (decision numbers are
        taken as if the records were made)."""
        best = self._index.best_agent(g, call.excluded) if g.live_agents else None
        if best is not None:
            self._reserve(call, self.agents[best], now, parked=False)
            self._log.seq += 2 if self.auto_accept else 1  # the offer (and its acceptance)
            return best
        self._waiting[call.queue].add(call.id)
        self._index.call_waits(call.id, g, self._key(call))
        self._log.seq += 1
        return None

    def _reserve(self, call: Call, agent: Agent, now: float, parked: bool = True) -> None:
        """Offer the call to the agent (with ``auto_accept``: and connect it).
        ``parked=False``: the call is in no index group (``_route`` callers)."""
        index = self._index
        if parked:
            index.call_leaves(call.id)
        call.agent_id = aid = agent.id
        call.offered_at = now
        auto = self.auto_accept
        if auto:
            self._connect(call, agent, now)
        else:
            self._waiting[call.queue].add(call.id)
            call.state = _RESERVED_CALL
            agent.slots[call.id] = _SLOT_RESERVED
        agent.idle_since = now
        load = len(agent.slots)
        if agent.presence is _AVAILABLE and load < agent.capacity:
            index.agent_joins(agent)
        else:
            index.agent_leaves(aid)
        if auto:
            # as after reserved -> busy: busy since this call (unless an offer is pending)
            if load == 1:
                agent.state = _BUSY
                agent.state_since = now
            else:
                self._refresh_state(agent, now)
                if agent.state is _BUSY:
                    agent.state_since = now
        else:
            self._refresh_state(agent, now)
            self._push_timer(
                now + self.policy.reservation.timeout_seconds, OFFER, call.id, aid, now
            )

    def _agent_free(self, agent: Agent, now: float, trigger: str) -> list[Decision]:
        """The agent may take more calls: give it the waiting calls it serves best."""
        out: list[Decision] = []
        slots = agent.slots
        if slots or agent.state is not agent.presence:
            self._refresh_state(agent, now)
        record = self.record_decisions
        log, index = self._log, self._index
        aid = agent.id
        while agent.presence is _AVAILABLE and len(slots) < agent.capacity:
            found = index.best_call(agent, self._excluded_by)
            if found is None:
                if not slots and not index.is_free(aid):
                    agent.idle_since = now
                index.agent_joins(agent)
                break
            call_id, g, score = found
            call = self.calls[call_id]
            self._reserve(call, agent, now)
            if not record:
                log.seq += 1
                out.append(
                    _new_tuple(
                        Decision,
                        (log.seq, now, call_id, call.queue, _OFFERED, trigger, aid, *_DEFAULTS),
                    )
                )
                if self.auto_accept:
                    log.seq += 1
                continue
            out.append(
                self._record(
                    call,
                    now,
                    DecisionKind.OFFERED,
                    trigger,
                    agent_id=agent.id,
                    cands=[Candidate(agent.id, score, agent.idle_since)],
                    eligible=1,
                    group=g,
                    note="the waiting call this agent serves best (priority, then wait)",
                )
            )
            if self.auto_accept:
                self._record(call, now, DecisionKind.ACCEPTED, "accept", agent_id=agent.id)
        else:
            # not routable: out of the heaps (done by _reserve already if it took a call)
            if not out:
                self._index.agent_leaves(agent.id)
        return out

    def _withdraw(
        self, call: Call, agent: Agent, now: float, kind: DecisionKind, trigger: str,
        exclude: bool = True,
    ) -> list[Decision]:
        """Take a pending offer back from an agent; re-route the call, free the agent."""
        if exclude:
            call.excluded.add(agent.id)
            self._excluded_by[call.id] = call.excluded
        del agent.slots[call.id]
        agent.idle_since = now
        self._note(call, now, kind, trigger, agent.id)
        call.state = CallState.WAITING
        call.agent_id = None
        call.offered_at = None
        spec = self.policy.queues[call.queue]
        out: list[Decision] = []
        if (
            spec.max_wait_seconds is not None
            and now - call.queue_entered_at >= spec.max_wait_seconds
        ):
            out += self._overflow(call, now)
        else:
            # catch up on relaxation steps that came due during the offer
            while (
                call.step < len(spec.relax)
                and now - call.queue_entered_at >= spec.relax[call.step].after_seconds
            ):
                call.step += 1
            out.append(self._route(call, now, trigger))
        out += self._agent_free(agent, now, trigger)
        return out

    def _relax(self, call: Call, step: int, now: float) -> list[Decision]:
        if step <= call.step:
            return []
        old = self._group_of(call)
        call.step = step
        if call.state is not CallState.WAITING:
            return []
        if self._group_of(call) is old:
            return []
        self._index.call_leaves(call.id)
        return [self._route(call, now, "relax")]

    def _overflow(self, call: Call, now: float) -> list[Decision]:
        spec = self.policy.queues[call.queue]
        target = spec.overflow_queue
        if target is None:
            return []
        self._index.call_leaves(call.id)
        self._waiting[call.queue].discard(call.id)
        self._counters[call.queue].overflowed += 1
        old = call.queue
        call.queue = target
        call.skills = dict(self.policy.queues[target].skills)
        call.step = 0
        call.queue_entered_at = now
        self._counters[target].offered += 1
        self._schedule_queue_timers(call)
        return [
            self._route(
                call,
                now,
                "overflow",
                note=f"overflowed from {old} after {spec.max_wait_seconds:g} s",
            )
        ]

    def _schedule_queue_timers(self, call: Call) -> None:
        spec = self.policy.queues[call.queue]
        t0 = call.queue_entered_at
        for i, st in enumerate(spec.relax, start=1):
            if i > call.step:
                self._push_timer(t0 + st.after_seconds, RELAX, call.id, str(i), t0)
        if spec.max_wait_seconds is not None and spec.overflow_queue is not None:
            self._push_timer(t0 + spec.max_wait_seconds, OVERFLOW, call.id, "", t0)

    def _push_timer(self, due: float, kind: str, a: str, b: str, stamp: float) -> None:
        self._timers.push(due, kind, a, b, stamp)

    def _timer_valid(self, t: Timer) -> bool:
        _, _, kind, a, b, stamp = t
        if kind == WRAP:
            agent = self.agents.get(a)
            return agent is not None and agent.wrap_until.get(b) == stamp
        call = self.calls.get(a)
        if call is None:
            return False
        if kind == OFFER:
            return (
                call.state is CallState.RESERVED and call.agent_id == b and call.offered_at == stamp
            )
        if call.queue_entered_at != stamp:
            return False  # the call moved to another queue since
        if kind == RELAX:
            return int(b) > call.step and call.state in (CallState.WAITING, CallState.RESERVED)
        return call.state is CallState.WAITING  # overflow

    def _end_wrap(self, agent: Agent, call_id: str) -> None:
        agent.slots.pop(call_id, None)
        agent.wrap_until.pop(call_id, None)

    def _batch(self, agents: list[Agent], now: float, trigger: str) -> list[Decision]:
        """Assign waiting calls to these (routable) agents optimally; the rest join the index."""
        agents = [a for a in agents if a.routable]
        for a in agents:
            self._index.agent_leaves(a.id)
        edges: dict[str, dict[str, float]] = {}
        keys: dict[str, tuple[float, float, int]] = {}
        groups: dict[str, Group] = {}
        for a in agents:
            for g, score in self._index.groups_of(a):
                if not g.live_calls:
                    continue
                for key, cid, _ in self._index.waiting_in(g):
                    if a.id in self.calls[cid].excluded:
                        continue
                    edges.setdefault(cid, {})[a.id] = score
                    keys[cid] = key
                    groups[cid] = g
        order = sorted(edges, key=keys.__getitem__)
        idle = {a.id: -a.idle_since for a in agents}
        ranks = {aid: r for r, aid in enumerate(sorted(idle, key=lambda x: (idle[x], x)))}
        result = solve_batch(order, {a.id: a.capacity - a.load for a in agents}, edges, ranks)
        out: list[Decision] = []
        for cid in result.served:
            aid = result.pairs[cid]
            call = self.calls[cid]
            cands = sorted(
                (Candidate(x, s, self.agents[x].idle_since) for x, s in edges[cid].items()),
                key=lambda c: (-c.score, c.idle_since, c.agent_id),
            )
            chosen = next(c for c in cands if c.agent_id == aid)
            runner = [c for c in cands if c.agent_id != aid][: _TOP_K - 1]
            self._reserve(call, self.agents[aid], now)
            out.append(
                self._record(
                    call,
                    now,
                    DecisionKind.OFFERED,
                    trigger,
                    agent_id=aid,
                    cands=[chosen, *runner],
                    eligible=len(cands),
                    group=groups[cid],
                    note=f"batch of {len(agents)} agents and {len(order)} calls, optimal",
                )
            )
            if self.auto_accept:
                self._note(call, now, DecisionKind.ACCEPTED, "accept", aid)
        for a in agents:
            if a.routable and not self._index.is_free(a.id):
                self._index.agent_joins(a)
            self._refresh_state(a, now)
        return out
