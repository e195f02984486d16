"""Live routing: the pure router driven by the webhooks, and what its decisions make
Twilio do.

A flow's ``route`` ends the IVR part with an ``Enqueue``; in the same store
transaction the call enters the router. An ``offered`` decision reserves an agent;
once the transaction commits, the caller's call is redirected (twilio REST client)
to ``/voice/connect``, which dials the agent with a whisper of who is calling and
why. The agent answering is the reservation's accept; no answer or busy is its
timeout or reject, and the router offers the call to the next best agent. A caller
who asked for a callback is rung back when an agent is reserved.

How caller and agent are bridged is a setting (``IVR_AGENT_BRIDGE``): ``dial`` (the
caller's call dials the agent) or ``conference`` (both join the call's conference room,
:mod:`ivr.live.conference`), where holding the caller, consulting another agent (three-way
audio) and handing the call over are REST changes of the room's participants. Every REST
request goes through the outbox and the background sender, in the order recorded per call.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import secrets
import threading
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from ivr.counters import count
from ivr.engine.session import Session
from ivr.errors import FlowError
from ivr.floor import FloorEvent, FloorLog, on_hold, pending_consult
from ivr.flows.loader import Flow
from ivr.flows.models import RouteNode
from ivr.live.conference import Room, agent_label, fold_all, room_name
from ivr.live.outbox import KEEP_S, Intent, MemoryOutbox, Outbox, wall_clock
from ivr.live.roster import load_roster
from ivr.live.routing_store import RoutingState
from ivr.live.telephony import Telephony, TelephonyError
from routing import (
    Call,
    Decision,
    DecisionKind,
    PolicyError,
    Router,
    RoutingError,
    RoutingPolicy,
    load_policy,
    parse_policy,
)

log = logging.getLogger("ivr.routing")
POLICY_FILE = "routing.yaml"
#: Times a caller who asked for a callback is rung before the call counts as abandoned.
CALLBACK_TRIES = 3
STATS_DAY = "stats_day"
#: How callers and agents are bridged (``IVR_AGENT_BRIDGE``); the first is the default.
BRIDGES = ("dial", "conference")
#: What the desktop asks of a live call's room (conference bridge), or of the caller's
#: leg (``requeue``: to the queue's wait, after a transfer to a queue nobody is free for).
#: ``hold`` and ``resume`` both set the caller's hold to what the floor log says now, so
#: a retried or late request never undoes a later one.
KINDS = ("hold", "resume", "consult", "consult_accept", "consult_end", "requeue")


# ------------------------------------------------------------------ policy


def routing_policy(flows_dir: Path, flows: Mapping[str, Flow]) -> RoutingPolicy:
    """``routing.yaml`` beside the flows, or one derived from the flows' route nodes
    (each queue with the skills its first route names, relaxed to any level after 60 s)."""
    path = flows_dir / POLICY_FILE
    if path.is_file():
        return load_policy(path)
    queues: dict[str, Any] = {"general": {"skills": {}, "relax": [
        {"after_seconds": 60, "min_level": 1, "any_language": True}]}}
    for flow in flows.values():
        for node in flow.nodes.values():
            if isinstance(node, RouteNode) and node.queue not in queues:
                queues[node.queue] = {"skills": dict(node.skills), "relax": [
                    {"after_seconds": 60, "min_level": 1}]}
    return parse_policy({"queues": queues}, source=f"{flows_dir} (derived from route nodes)")


def policy_problems(flows: Mapping[str, Flow], policy: RoutingPolicy, where: str) -> list[str]:
    """Route nodes that name a queue, skill or language the policy does not know."""
    problems = []
    for flow in flows.values():
        for node_id, node in flow.nodes.items():
            if not isinstance(node, RouteNode):
                continue
            prefix = f"{flow.path}: node '{node_id}'"
            if node.queue not in policy.queues:
                problems.append(f"{prefix}: queue: '{node.queue}' is not a queue of {where} "
                                f"(queues: {', '.join(sorted(policy.queues))})")
            for skill in node.skills:
                if policy.skills and skill not in policy.skills:
                    problems.append(f"{prefix}: skills.{skill}: not a skill of {where} "
                                    f"(skills: {', '.join(policy.skills)})")
            langs = [node.language] if node.language else list(flow.spec.languages)
            for lang in langs:
                if policy.languages and lang not in policy.languages:
                    problems.append(f"{prefix}: language '{lang}' is not a language of {where}")
    return problems


def check_policy_file(flows_dir: Path, flows: Mapping[str, Flow]) -> list[str]:
    """Problems of ``routing.yaml`` and of the flows against it, for ``ivr flows check``."""
    path = flows_dir / POLICY_FILE
    if not path.is_file():
        return []
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        return list(exc.problems)
    try:
        load_roster(flows_dir, policy)
    except FlowError as exc:
        return policy_problems(flows, policy, str(path)) + exc.problems
    return policy_problems(flows, policy, str(path))


# ------------------------------------------------------------------ effects


@dataclass(frozen=True)
class Connect:
    """Ring the reserved agent for a caller who is on the line."""

    call_id: str
    agent_id: str
    #: Recorded already claimed by this process's sender: handed to it by :meth:`run`.
    intent: Intent | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class RingBack:
    """Ring a caller who asked for a callback; their call then dials the agent."""

    call_id: str
    agent_id: str
    to: str
    from_: str
    intent: Intent | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Request:
    """A REST change of a live call the desktop asked for (one of :data:`KINDS`)."""

    call_id: str
    agent_id: str
    kind: str


Effect = Connect | RingBack | Request


@dataclass
class LiveRouting:
    """The router as the web layer uses it: every method runs in one routing transaction
    and returns the effects to apply once the surrounding transaction commits."""

    state: RoutingState
    telephony: Telephony
    public_url: str | None
    timezone: str = "UTC"  # the contact center's day, for "service level so far today"
    #: Called on each failed Twilio REST request (e.g. counted by /metrics).
    on_rest_failure: Callable[[], None] = lambda: None
    outbox: Outbox = field(default_factory=MemoryOutbox)
    #: The app's clock, for the routing changes the background sender makes.
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc)
    #: True once this process runs a background sender: webhooks then only wake it.
    background: bool = False
    #: ``dial`` or ``conference`` (see :data:`BRIDGES`).
    bridge: str = "dial"
    #: Holds and consults of each call (whether the caller should hear hold music).
    floor: FloorLog | None = None
    #: The conference rooms' status callbacks (where each call's room stands).
    rooms: FloorLog | None = None
    _wake: threading.Event = field(default_factory=threading.Event)
    #: Intents this process recorded already claimed, committed, not yet sent.
    _mine: deque[Intent] = field(default_factory=deque)

    # ----------------------------------------------------------- call side

    def enqueue(self, session: Session, now: dt.datetime) -> list[Effect]:
        """The IVR routed the call: it enters the router."""
        route = session.route or {}
        call = Call(id=session.call_id, queue=route["queue"], skills=dict(route["skills"]),
                    language=route.get("language"), priority=int(route.get("priority", 0)),
                    context={**route.get("context", {}), "caller": session.data.get("caller"),
                             "called": session.data.get("called")})
        return self._enter(call, now)

    def admit(self, call_id: str, queue: str, language: str | None, context: dict[str, Any],
              now: dt.datetime) -> list[Effect]:
        """A call on the safe path enters ``queue`` with no skill requirement (a no-op when
        the router already holds it)."""
        return self._enter(Call(id=call_id, queue=queue, skills={}, language=language,
                                priority=0, context=dict(context)), now)

    def _enter(self, call: Call, now: dt.datetime) -> list[Effect]:
        with self.state.update() as router:
            if call.id in router.calls:  # the same route twice (e.g. a replayed step)
                return []
            decision = router.enqueue(call, now.timestamp())
            log.info("routed", extra={"call_id": call.id, "queue": call.queue,
                                      "decision": decision.kind.value,
                                      "agent": decision.agent_id})
            # Claimed as recorded: every caller of enqueue and admit runs the effects
            # after the commit, which hands them to this process's sender.
            return self._effects(router, [decision], claim=True)

    def abandon(self, call_id: str, now: dt.datetime) -> list[Effect]:
        with self.state.update() as router:
            call = router.calls.get(call_id)
            if call is None or call.state.value not in ("waiting", "reserved"):
                return []
            if _callback_of(router, call_id):  # hung up on purpose: we ring them back
                return []
            decisions = router.abandon(call_id, now.timestamp())
            return self._effects(router, decisions)

    def callback_leg_ended(self, call_id: str, agent_id: str, status: str, now: dt.datetime
                           ) -> list[Effect]:
        """The call that rang a caller back ended. Unanswered, it is no fault of the agent:
        the reservation is released without a penalty and the caller is tried again, up to
        ``CALLBACK_TRIES`` times, then the call is counted as abandoned."""
        if status == "completed":
            return []
        with self.state.update() as router:
            call = router.calls.get(call_id)
            if call is None or call.state.value != "reserved" or call.agent_id != agent_id:
                return []
            callback = dict(call.context.get("callback") or {})
            callback["tries"] = int(callback.get("tries", 0)) + 1
            t = now.timestamp()
            if callback["tries"] >= CALLBACK_TRIES:
                callback["gave_up"] = True
                router.set_context(call_id, "callback", callback)
                decisions = router.abandon(call_id, t)
                log.warning("callback unanswered; giving up", extra={
                    "call_id": call_id, "tries": callback["tries"]})
            else:
                router.set_context(call_id, "callback", callback)
                decisions = router.reject(call_id, agent_id, t)
            return self._effects(router, decisions)

    def assignment(self, call_id: str, agent_id: str) -> str | None:
        """Where the call stands with this agent: ``reserved``, ``connected`` (accepted,
        through the API or by picking up), ``completed`` (the agent already closed it,
        possibly before the caller was bridged), or None (not theirs)."""
        found = self.state.query(lambda router: standing(router, call_id, agent_id))
        if found != "":
            return found
        return "completed" if self.completed_by(call_id, agent_id) else None

    def completed_by(self, call_id: str, agent_id: str) -> bool:
        """The call, gone from the router, ended completed by this agent."""
        last = next((d for d in reversed(self.state.decisions(call_id))
                     if d.get("kind") in ("completed", "abandoned")), None)
        return last is not None and last["kind"] == "completed" and last["agent_id"] == agent_id

    def agent_answered(self, call_id: str, agent_id: str, now: dt.datetime) -> bool:
        """The agent picked up (the whisper was requested): the reservation is accepted.
        True as well when this agent already accepted or completed it through the API."""
        with self.state.update() as router:
            call = router.calls.get(call_id)
            if call is not None and call.agent_id == agent_id and \
                    call.state.value == "reserved":
                router.accept(call_id, agent_id, now.timestamp())
                return True
        return self.assignment(call_id, agent_id) in ("connected", "completed")

    def agent_leg_ended(self, call_id: str, agent_id: str, status: str, now: dt.datetime
                        ) -> tuple[bool, list[Effect]]:
        """The Dial to the agent ended. Returns (conversation happened, effects)."""
        with self.state.update() as router:
            call = router.calls.get(call_id)
            t = now.timestamp()
            if call is None:
                return status == "completed", []
            if call.state.value == "connected":
                decisions = router.complete(call_id, t)
                return True, self._effects(router, decisions)
            if call.state.value == "reserved" and call.agent_id == agent_id:
                decisions = (router.reject(call_id, agent_id, t) if status == "busy"
                             else router.timeout(call_id, agent_id, t))
                return False, self._effects(router, decisions)
            return False, []

    # ----------------------------------------------------------- agent side

    def prepare(self) -> None:
        """Bring this process's router to the journal's head before an operation takes the
        routing lock: what other processes recorded meanwhile is then read and applied
        outside the lock, which every worker waits for, and only the records of the last
        moments inside it."""
        self.state.query(_nothing)

    def agent_decision(self, action: str, call_id: str, agent_id: str, now: dt.datetime
                       ) -> list[Effect]:
        """An agent's accept/reject from the agent API."""
        self.prepare()
        with self.state.update() as router:
            t = now.timestamp()
            if action == "accept":
                call = router.calls.get(call_id)
                if call is not None and call.agent_id == agent_id and \
                        call.state.value == "connected":
                    return []  # already accepted (picked up, or the same request again)
                router.accept(call_id, agent_id, t)
                return []
            decisions = router.reject(call_id, agent_id, t)
            effects = self._effects(router, decisions)
            if self.bridge == "conference":  # nobody else free: from the room to the queue
                effects += self._requeue_waiting(router, {call_id: agent_id})
            return effects

    def apply(self, change: Any) -> tuple[Any, list[Effect]]:
        """Run ``change(router)`` (returning decisions or a value) and collect effects."""
        with self.state.update() as router:
            result = change(router)
            decisions = [d for d in (result if isinstance(result, list) else [])
                         if isinstance(d, Decision)]
            return result, self._effects(router, decisions)

    def request(self, call_id: str, steps: Iterable[tuple[str, str]], to: str = ""
                ) -> list[Effect]:
        """Record REST changes of a live call, ``(kind, agent)`` steps sent in this order
        (``to``: the agent who hands the call over, for ``consult_accept``). Unless the call
        is in a room (:meth:`in_room`) only ``requeue`` means anything; the rest is
        recorded on the floor only."""
        room = self.in_room(call_id)
        wanted = [(k, a) for k, a in steps if k == "requeue" or room]
        if not wanted or not getattr(self.telephony, "configured", True):
            return []
        tag = secrets.token_hex(6)  # each click is its own request
        intents = [Intent(f"{k}:{call_id}:{a}:{tag}", k, call_id, a, quote(to))
                   for k, a in wanted]
        with self.state.update():  # the outbox's rows are written in a routing transaction
            self.outbox.add(intents, wall_clock())
        return [Request(call_id, a, k) for k, a in wanted]

    def room(self, call_id: str) -> Room:
        """The call's conference room as its status callbacks tell it."""
        events = self.rooms.events(call_id=call_id) if self.rooms is not None else []
        return fold_all(e.data for e in events if e.kind == "conference")

    def tick(self, now: dt.datetime) -> list[Effect]:
        """Run the router's due timers (relaxation, overflow, offer timeouts, wrap-up), and
        start new queue statistics when the contact center's day changes."""
        day = now.astimezone(ZoneInfo(self.timezone)).date().isoformat()
        known = self.state.meta(STATS_DAY)
        if known != day:
            if known is not None:
                with self.state.update() as router:
                    router.reset_stats()
                log.info("queue statistics reset for a new day", extra={"day": day})
            self.state.set_meta(STATS_DAY, day)
        due = self.state.query(lambda router: router.next_due())
        if due is None or due > now.timestamp():
            return []
        with self.state.update() as router:
            offers = {c.id: c.agent_id for c in router.calls.values()
                      if c.state.value == "reserved"}
            decisions = router.tick(now.timestamp())
            for call_id, agent_id in offers.items():  # never bench an agent Twilio never rang
                call = router.calls.get(call_id)
                timed_out = call is None or call.agent_id != agent_id
                agent = router.agents.get(agent_id or "")
                if timed_out and agent is not None and agent.presence.value == "break" and \
                        self.outbox.delivered(call_id, agent.id) is False:
                    if call is not None:  # nor keep them from the call they never heard
                        call.excluded.discard(agent.id)
                    decisions += router.set_agent_state(agent.id, "available", now.timestamp())
            effects = self._effects(router, decisions)
            if self.bridge == "conference":  # out of the room to the queue's wait
                effects += self._requeue_waiting(router, offers)
            return effects

    def _requeue_waiting(self, router: Router, offers: Mapping[str, str | None]
                         ) -> list[Effect]:
        """Callers whose offer timed out or was rejected while they waited in the
        conference room, and who wait again (nobody else free): moved to the queue's wait,
        where they hear their place in line (inside the open routing transaction)."""
        intents = [Intent(f"requeue:{c}:{a}:{secrets.token_hex(6)}", "requeue", c, a or "")
                   for c, a in offers.items() if c in router.calls
                   and router.calls[c].state.value == "waiting"
                   and router.calls[c].context.get("called")  # it was in the room
                   and not _callback_of(router, c) and self.outbox.delivered(c, a or "")]
        if intents and getattr(self.telephony, "configured", True):
            self.outbox.add(intents, wall_clock())
            return [Request(i.call_id, i.agent_id, "requeue") for i in intents]
        return []

    # ----------------------------------------------------------- effects

    def _effects(self, router: Router, decisions: Iterable[Decision], claim: bool = False
                 ) -> list[Effect]:
        """The REST requests the decisions need, recorded in the outbox inside the same
        routing transaction (so a committed reservation always has its request).
        ``claim``: recorded claimed by this process's sender, which :meth:`run` hands them
        to after the commit, saving the sender a claim transaction per call."""
        out: list[Effect] = []
        intents: list[Intent] = []
        claim = claim and getattr(self.telephony, "configured", True)  # (nothing is sent)
        for d in decisions:
            if d.kind is not DecisionKind.OFFERED or d.agent_id is None:
                continue
            callback = _callback_of(router, d.call_id)
            if callback:
                intent = Intent(f"ring:{d.call_id}:{d.agent_id}:{d.seq}", "ring", d.call_id,
                                d.agent_id, callback["to"], callback["from"])
                out.append(RingBack(d.call_id, d.agent_id, callback["to"], callback["from"],
                                    intent if claim else None))
            else:
                intent = Intent(f"connect:{d.call_id}:{d.agent_id}:{d.seq}", "connect",
                                d.call_id, d.agent_id)
                out.append(Connect(d.call_id, d.agent_id, intent if claim else None))
            intents.append(intent)
        if intents and not getattr(self.telephony, "configured", True):
            # No Twilio account: nothing can be sent, so nothing is queued or retried; the
            # offer stands for an agent who accepts on their desktop or through the API.
            for i in intents:
                log.error("cannot connect the call to its agent: TWILIO_ACCOUNT_SID is not "
                          "set", extra={"call_id": i.call_id, "agent": i.agent_id})
        elif intents:
            self.outbox.add(intents, wall_clock(), claimed=claim)
        return out

    def run(self, effects: Iterable[Effect]) -> None:
        """After the routing transaction committed: have the recorded REST requests sent.
        With a background sender (``ivr serve``) this only wakes it, so no REST call runs
        inside a webhook; without one (tests, ``ivr call``) they are sent now."""
        effects = list(effects)
        if not effects:
            return
        self._mine.extend(i for e in effects if (i := getattr(e, "intent", None)) is not None)
        if self.background:
            self._wake.set()
        else:
            self.deliver()

    def deliver(self, pool: ThreadPoolExecutor | None = None) -> int:
        """Send every due intent of the outbox (in ``pool`` when given); returns how many
        were tried. A failure is retried with backoff; the last one hands the call back."""
        intents = []
        while self._mine:  # (deque.popleft is atomic: run() may add meanwhile)
            intents.append(self._mine.popleft())
        intents += self.outbox.claim(wall_clock())
        by_call: dict[str, list[Intent]] = defaultdict(list)
        for intent in intents:  # in the order recorded
            by_call[intent.call_id].append(intent)

        def send_all(mine: list[Intent]) -> list[str]:  # one call's, one after another
            return [i.key for i in mine if self._send(i)]

        if pool is None:
            sent = [key for mine in by_call.values() for key in send_all(mine)]
        else:
            sent = [key for keys in pool.map(send_all, by_call.values()) for key in keys]
        self.outbox.sent(sent)  # one transaction for the batch
        return len(intents)

    def sender_loop(self, stop: threading.Event, threads: int = 8) -> None:
        """The background sender: woken by :meth:`run`, and every 0.25 s for retries."""
        self.background = True
        pruned_at = 0.0
        with ThreadPoolExecutor(threads, thread_name_prefix="ivr-outbox") as pool:
            while not stop.is_set():
                self._wake.wait(0.25)
                self._wake.clear()
                try:
                    while self.deliver(pool):
                        pass
                    if wall_clock() - pruned_at > 600:
                        pruned_at = wall_clock()
                        self.outbox.prune(pruned_at - KEEP_S)
                except Exception:
                    log.exception("outbox sender failed; will try again")

    def _send(self, intent: Intent) -> bool:
        """Send one intent; True when Twilio took it (the caller marks it sent). A failure
        is recorded for a retry, or, at the last try, hands the call back to the router."""
        if self.public_url is None:
            error = "cannot connect calls: set IVR_PUBLIC_URL (the URL Twilio reaches)"
        else:
            base = self.public_url.rstrip("/")
            query = urlencode({"call": intent.call_id, "agent": intent.agent_id})
            url = f"{base}/voice/connect?{query}"
            try:
                if intent.kind == "connect":
                    self.telephony.redirect(intent.call_id, url)
                    if self.in_room(intent.call_id):
                        self._dial_agent(intent, base, query)
                elif intent.kind == "ring":
                    self.telephony.ring(intent.to, intent.from_, url, f"{base}/voice/status?"
                                        + urlencode({"callback_for": intent.call_id,
                                                     "agent": intent.agent_id}))
                else:
                    self._change_room(intent, base, query)
            except TelephonyError as exc:
                error = str(exc)
            else:
                log.info("agent reserved; connecting" if intent.kind in ("connect", "ring")
                         else "call's room changed", extra={
                             "call_id": intent.call_id, "agent": intent.agent_id,
                             "how": intent.kind})
                return True
        count("twilio_rest_failures")
        self.on_rest_failure()
        final = self.outbox.failed(intent.key, error, wall_clock())
        log.error("could not reach Twilio for the call's agent" + ("; giving up" if final
                                                                   else "; will retry"),
                  extra={"call_id": intent.call_id, "agent": intent.agent_id, "error": error,
                         "try": intent.tries + 1})
        if final:
            count("twilio_rest_given_up")
            self.run(self.telephony_failed(intent, self.clock()))
        return False

    # ----------------------------------------------------------- conference bridge

    def _from_number(self, call_id: str) -> str:
        """The number the caller dialled (ours): the caller id of the agent legs."""
        return str(self.state.query(lambda r: (r.calls[call_id].context.get("called") or "")
                                    if call_id in r.calls else ""))

    def in_room(self, call_id: str) -> bool:
        """Whether the call meets its agent in a conference room: the conference bridge,
        and a number the caller dialled to show the agent leg (a call admitted on the safe
        path without one dials the agent, as with the dial bridge)."""
        return self.bridge == "conference" and bool(self._from_number(call_id))

    def _contact(self, agent_id: str) -> str:
        contact = self.state.contact(agent_id)
        if not contact:
            raise TelephonyError(f"agent '{agent_id}' has no contact to ring")
        return contact

    def _dial_agent(self, intent: Intent, base: str, query: str) -> None:
        """The agent's leg of a conference: it rings the agent, whose answer (the whisper
        webhook, ``/voice/agent-join``) accepts the reservation and joins the room."""
        if self.assignment(intent.call_id, intent.agent_id) not in ("reserved", "connected"):
            return  # moved on (timed out, taken back): nothing to ring
        timeout = int(self.state.query(lambda r: r.policy.reservation.timeout_seconds))
        self.telephony.ring(self._contact(intent.agent_id), self._from_number(intent.call_id),
                            f"{base}/voice/agent-join?{query}",
                            f"{base}/voice/agent-leg?{query}", timeout_s=timeout)

    def caller_held(self, call_id: str) -> bool:
        """Whether the caller should hear hold music now: an agent holds them, or a consult
        about their call is under way."""
        events = self.floor.events(call_id=call_id) if self.floor is not None else []
        return on_hold(events) or pending_consult(events) is not None

    def _change_room(self, intent: Intent, base: str, query: str) -> None:
        """Send one desktop request: a hold, a consult, the hand-over, a requeue."""
        call_id = intent.call_id
        if intent.kind == "requeue":
            self.telephony.redirect(call_id, f"{base}/voice/requeue?"
                                    + urlencode({"call": call_id}))
            return
        if intent.kind == "consult":  # the room is made again if it must be: its name
            timeout = int(self.state.query(lambda r: r.policy.reservation.timeout_seconds))
            self.telephony.add_participant(
                room_name(call_id), self._contact(intent.agent_id),
                self._from_number(call_id), agent_label(intent.agent_id),
                f"{base}/voice/consult-leg?{query}", timeout)
            return
        live = self.room(call_id).current()
        if live is None:
            raise TelephonyError(f"the conference of call {call_id} has not started (no "
                                 "status callback yet)")
        hold: dict[str, Any] = {"hold": self.caller_held(call_id)}
        if hold["hold"]:
            hold.update(hold_url=f"{base}/voice/hold-music", hold_method="POST")
        if intent.kind == "consult_accept":  # to: the agent who hands the call over
            self.telephony.update_participant(live.sid, agent_label(intent.agent_id),
                                              end_conference_on_exit=True)
            first = agent_label(unquote(intent.to))
            self.telephony.update_participant(live.sid, first, end_conference_on_exit=False)
            self.telephony.update_participant(live.sid, call_id, **hold)
            self._take_out(live.sid, call_id, unquote(intent.to))
            return
        if intent.kind == "consult_end":
            self._take_out(live.sid, call_id, intent.agent_id)
        self.telephony.update_participant(live.sid, call_id, **hold)

    def _take_out(self, conference_sid: str, call_id: str, agent_id: str) -> None:
        """An agent's leg out of the room; already gone (hung up, never answered, a
        retried request) is what was wanted, so a refusal is only logged."""
        try:
            self.telephony.remove_participant(conference_sid, agent_label(agent_id))
        except TelephonyError as exc:
            log.info("agent leg already out of the room", extra={
                "call_id": call_id, "agent": agent_id, "error": str(exc)})

    def telephony_failed(self, intent: Intent, now: dt.datetime) -> list[Effect]:
        """Twilio could not be asked to connect the call: the offer is taken back with no
        penalty for the agent, and the call keeps its place at the head of its queue.
        A consult Twilio could not place ends, and the caller is resumed; a hand-over
        that failed half-way connects the caller to the agent who took the call afresh."""
        if intent.kind == "ring":
            return self.callback_leg_ended(intent.call_id, intent.agent_id, "failed", now)
        if intent.kind == "consult":
            if self.floor is not None:
                self.floor.add(FloorEvent(intent.call_id, intent.agent_id, now.timestamp(),
                                          "consult_end", {"accepted": False,
                                                          "failed": True}))
            return self.request(intent.call_id, [("resume", intent.agent_id)])
        if intent.kind == "consult_accept":
            key = f"connect:{intent.call_id}:{intent.agent_id}:{secrets.token_hex(6)}"
            with self.state.update():
                self.outbox.add([Intent(key, "connect", intent.call_id, intent.agent_id)],
                                wall_clock())
            return [Connect(intent.call_id, intent.agent_id)]
        if intent.kind in KINDS:  # a hold or a requeue: the caller stays with the agent
            return []
        with self.state.update() as router:
            call = router.calls.get(intent.call_id)
            if call is None or call.state.value != "reserved" or \
                    call.agent_id != intent.agent_id:
                return []
            return self._effects(router, router.release(intent.call_id, intent.agent_id,
                                                        now.timestamp()))

    # ----------------------------------------------------------- questions

    def estimated_wait(self, call_id: str, now: dt.datetime) -> float | None:
        try:
            return self.state.query(
                lambda router: router.estimated_wait(now.timestamp(), call_id=call_id))
        except RoutingError:
            return None

    def explain(self, call_id: str) -> list[dict[str, Any]]:
        return self.state.decisions(call_id)


def _callback_of(router: Router, call_id: str) -> dict[str, str] | None:
    call = router.calls.get(call_id)
    if call is None:
        return None
    cb = call.context.get("callback")
    return cb if isinstance(cb, dict) and cb.get("to") else None


def minutes_phrase(seconds: float | None) -> str | None:
    """'less than a minute', 'about 3 minutes' (rounded up: promise no less than the truth)."""
    if seconds is None:
        return None
    if seconds < 60:
        return "less than a minute"
    minutes = math.ceil(seconds / 60)
    return f"about {minutes} minutes"


def standing(router: Router, call_id: str, agent_id: str) -> str | None:
    """The call's state with this agent while the router holds it: ``reserved`` or
    ``connected``, None when it is not theirs, "" when the router no longer holds the call
    (:meth:`LiveRouting.completed_by` then tells)."""
    call = router.calls.get(call_id)
    if call is None:
        return ""
    if call.agent_id == agent_id and call.state.value in ("reserved", "connected"):
        return str(call.state.value)
    return None


def _nothing(router: Router) -> None:
    return None
