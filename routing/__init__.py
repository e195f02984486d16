"""Skills-based routing: a pure, fast core shared by the live layer and the simulator.

Nothing here reads a clock, a global or the network: every method takes
``now`` (float seconds, any epoch, non-decreasing) and decisions come back as
plain records. The simulator drives it with its own clock; the live layer with
wall time, persisting ``Router.to_dict()`` between requests.

Stable API
----------
Policy (``routing.policy``)::

    load_policy(path) -> RoutingPolicy            # YAML file; raises PolicyError(.problems)
    parse_policy(data: dict, source="<policy>") -> RoutingPolicy
    RoutingPolicy.default() -> RoutingPolicy      # one "general" queue
    policy.queue(name) -> QueueSpec               # UnknownQueueError names close matches

Records (``routing.models``)::

    Agent(id, skills: dict[str, int 1-5], languages=frozenset(), name="", capacity=1,
          wrap_up_seconds=None, presence=AgentState.OFFLINE)
        .state, .state_since, .idle_since, .slots {call_id: SlotState}, .load, .routable
    Call(id, queue, skills={} (-> queue's), language=None (-> queue's), priority=0, context={})
        .state (CallState), .enqueued_at, .step, .agent_id, .excluded, .answered_at ...
    Decision(seq, time, call_id, queue, kind: DecisionKind, trigger, agent_id, score,
             runner_up_id, runner_up_score, candidates: tuple[Candidate], eligible_count,
             step, step_label, requirement, priority, waited, excluded, note)
        .as_dict() / Decision.from_dict(d)
    AgentState: offline available reserved busy wrap_up break
    DecisionKind: offered queued accepted rejected timed_out abandoned completed

Router (``routing.router.Router(policy=None, *, history_limit=10_000, record_decisions=True,
auto_accept=False)``)::

    # record_decisions=False (simulations): decisions carry seq, time, call, queue,
    # kind, trigger and agent only, and explain() keeps nothing (nor which calls
    # ended); routing is identical.
    # auto_accept=True (simulations): every offer is accepted as it is made: an
    # OFFERED decision comes back with its call already connected (no reservation
    # timer; accept/reject/timeout do not apply). Same agents at the same times as a
    # driver that accepts every offer at once; explain() shows offered, accepted.
    prepare() -> None                                 # build every queue x step x language index
                                                      # now (else: one agent scan on first use)
    add_agent(agent, now) -> list[Decision]           # presence=available may take a call at once
    update_agent(agent_id, now, *, skills=None, languages=None, capacity=None) -> list[Decision]
    remove_agent(agent_id, now) -> None
    agent_available(agent_id, now) -> list[Decision]  # sign-in / end of break / wrap-up ended early
    agent_freed = agent_available
    agents_available(agent_ids, now) -> list[Decision]  # shift start: one optimal batch
    set_agent_state(agent_id, "available"|"break"|"offline", now) -> list[Decision]
    enqueue(call, now) -> Decision                    # OFFERED (reserved agent) or QUEUED
    enqueue_brief(call, now) -> str | None            # the same change; only the agent offered
                                                      # (no Decision built unless recorded):
                                                      # the simulator's path, with Call.for_queue
    enqueue_many(calls, now) -> list[Decision]        # burst: one optimal batch
    accept(call_id, agent_id, now) -> None            # reservation -> connected
    reject(call_id, agent_id, now) -> list[Decision]  # call to next best agent, never this one
    timeout(call_id, agent_id, now) -> list[Decision] # same, and the policy's state for the agent
    complete(call_id, now) -> list[Decision]          # agent wraps up, then takes the next call
    abandon(call_id, now) -> list[Decision]           # caller hung up before being connected
    tick(now) -> list[Decision]                       # due relaxation, overflow, offer timeouts,
                                                      # wrap-up ends (each run at its due time)
    next_due() -> float | None                        # when to call tick next
    rebalance(now) -> list[Decision]                  # all waiting calls x free agents, optimally
    stats(queue, now) -> QueueStats                   # .as_dict()
    estimated_wait(now, *, call_id=None, queue=None, skills=None, language=None,
                   priority=0) -> float | None        # seconds; None: nobody staffed can take it
    explain(call_id) -> list[Decision]                # every decision/event of the call
    watch(listener | None) -> None                    # listener(decision) as each is logged
    requirement(call_id) -> Requirement               # after relaxation
    reset_stats() -> None                             # new statistics period (e.g. midnight)
    to_dict(*, history=True) -> dict                  # JSON-able snapshot (no derived state);
                                                      # history=False: without the decision log
    Router.from_dict(d, *, history_limit=10_000, record_decisions=True,
                     auto_accept=False) -> Router
                                                      # indexes and timers re-derived; the policy
                                                      # in d may differ if no call waits in a
                                                      # dropped queue
    check_invariants() -> None                        # AssertionError if inconsistent

Every method that places calls returns the routing decisions it made
(``offered``/``queued``); ``explain`` also keeps accepted/rejected/... events.
An ``offered`` decision is a reservation: the driver rings the agent and then
calls ``accept``, ``reject`` or ``timeout`` (``tick`` times offers out after
``policy.reservation.timeout_seconds``). Wrap-up ends come from ``tick``.
``tick(now)`` runs each due timer at its own due time; a driver that ticks late
may get an ``offered`` decision whose offer also timed out before ``now``:
the offer is pending only while ``router.calls[call_id].agent_id`` is that agent.

Cost: a decision is O(groups of the agent + log n), with no scan of agents or
calls (see ``routing.index``); ``stats`` and ``estimated_wait`` scan the agents
and are meant for dashboards and announcements, not for every event.

Policy semantics
----------------
* Eligible: every required skill at the current minimum level (after the
  queue's relaxation steps in force) and the language, if any.
* Fit score: sum of ``scoring.weight(skill) * level`` over required skills;
  best score wins, ties to the longest idle agent (then agent id).
* A freed agent takes the waiting call it is eligible for with the highest
  effective priority (queue priority + call priority + waited /
  ``priority_aging.seconds_per_level``), then the longest wait.
* Batches (``agents_available``, ``enqueue_many``, ``rebalance``): as many
  calls as possible, the most urgent first, then the best total fit
  (``routing.batch``; networkx max-weight matching).
* Reject / timeout: the call goes to the next best free agent, never again to
  one who refused it; if none is left it waits for a new agent, a relaxation
  step or its overflow. The call keeps its place (enqueue time, priority).
* Overflow: after ``max_wait_seconds`` in a queue the call moves to its
  ``overflow_queue`` with that queue's skills (language and call priority
  kept; the wait keeps counting from the first enqueue).
* Estimated wait: (calls ahead with the same requirement + 1 - free slots) x
  recent average handle time / staffed eligible slots. Calls of other queues
  competing for the same agents are not counted (optimistic when queues
  share agents heavily).

Errors: everything raised derives from ``routing.errors.RoutingError``.
CLI: ``routing.cli.add_commands(subparsers)`` registers ``ivr route check-policy PATH`` and
returns the ``route`` sub-commands (to add more, e.g. ``explain``);
``routing.cli.format_decision(decision) -> str`` prints a decision for humans.
"""

from routing.errors import (
    InvalidRecordError,
    InvalidTransitionError,
    PolicyError,
    RoutingError,
    UnknownAgentError,
    UnknownCallError,
    UnknownQueueError,
)
from routing.models import (
    Agent,
    AgentState,
    Call,
    CallState,
    Candidate,
    Decision,
    DecisionKind,
    Requirement,
    SlotState,
)
from routing.policy import QueueSpec, RelaxStep, RoutingPolicy, load_policy, parse_policy
from routing.router import Router
from routing.stats import QueueStats

__all__ = [
    "Agent",
    "AgentState",
    "Call",
    "CallState",
    "Candidate",
    "Decision",
    "DecisionKind",
    "InvalidRecordError",
    "InvalidTransitionError",
    "PolicyError",
    "QueueSpec",
    "QueueStats",
    "RelaxStep",
    "Requirement",
    "Router",
    "RoutingError",
    "RoutingPolicy",
    "SlotState",
    "UnknownAgentError",
    "UnknownCallError",
    "UnknownQueueError",
    "load_policy",
    "parse_policy",
]
