"""The flow engine: a pure function of (flow, session, event, time).

``start`` begins a call, ``step`` applies one caller event. Both return the
actions for the driver and the next session; neither reads a clock, a global or
the network (a SQLite ``lookup`` source is read through the flow's directory).
From a node the engine runs on through nodes that need no caller (say, branch,
set, lookup) until one waits for the caller (ask, collect, survey, voicemail) or
ends the IVR's part (route, transfer, hangup).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from ivr.engine.actions import (
    Action,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Play,
    Record,
    RouteRequest,
    Say,
)
from ivr.engine.context import get_path, holds, render_text, set_path
from ivr.engine.digits import invalid_digits, spoken_digits
from ivr.engine.events import CallEnded, CallerInput, Event, LegEnded, RecordingDone
from ivr.engine.session import TRAIL_LIMIT, Session
from ivr.engine.trust import trust_level
from ivr.flows.loader import Flow
from ivr.flows.models import (
    AskNode,
    BranchNode,
    CollectNode,
    GotoNode,
    HangupNode,
    LookupNode,
    Node,
    PlayNode,
    ReturnNode,
    RouteNode,
    SayNode,
    SetNode,
    SubflowNode,
    SurveyNode,
    Text,
    TransferNode,
    VoicemailNode,
)
from ivr.nlu import DEFAULT_THRESHOLD, IntentScore
from ivr.nlu.keyword import normalize
from ivr.nlu.sentiment import analyze as analyze_sentiment

#: Nodes visited in one step before the engine gives up and takes the safe path.
MAX_HOPS = 200
#: Characters of speech kept; ASR never returns more from one utterance.
MAX_SPEECH = 500
GENERAL_QUEUE = "general"
#: Session key counting failed tries in a row across nodes (internal: not agent context).
FAILED_IN_A_ROW = "_failed_in_a_row"
#: Session key holding the two intents offered when the recognizer was unsure.
OFFERED = "_offered"
#: Below this even the best guess is no guess: the caller is asked again.
UNSURE_FLOOR = 0.15
CHOICES_PROMPT = {
    "en": "Sorry, is this about {first}, or {second}? Press 1 for {first}, or 2 for {second}.",
    "es": "Disculpe, ¿se trata de {first}, o de {second}? Oprima 1 para {first}, o 2 para "
          "{second}.",
}
APOLOGY = {
    "en": "We're sorry, something went wrong on our side. Let me connect you to someone "
          "who can help.",
    "es": "Lo sentimos, algo salió mal de nuestro lado. Le comunico con alguien que pueda "
          "ayudarle.",
}
SURVEY_RANGE = {"csat": (1, 5), "ces": (1, 7)}


@dataclass
class _Turn:
    """The working state of one step; frozen into a new Session at the end."""

    flow: Flow
    session: Session
    now: dt.datetime
    event: str
    data: dict[str, Any]
    actions: list[Action] = field(default_factory=list)
    trail: list[dict[str, Any]] = field(default_factory=list)
    node: str | None = None
    attempts: int = 0
    question: int = 0
    status: str = "active"
    route: dict[str, Any] | None = None
    outcome: str | None = None

    @property
    def language(self) -> str:
        lang = self.data.get("language")
        return lang if lang in self.flow.spec.languages else self.flow.default_language

    def text(self, text: Text) -> str:
        return render_text(text, self.language, self.flow.default_language, self.data)

    def say(self, text: Text) -> Say:
        voice = self.flow.spec.languages[self.language]
        if isinstance(text, list):  # each segment spoken with its own language's voice
            parts = tuple(self._say_in(lang, seg) for seg in text for lang in seg)
            return Say(self.text(text), voice.voice, voice.locale, parts)
        return Say(self.text(text), voice.voice, voice.locale)

    def _say_in(self, language: str, text: Text) -> Say:
        voice = self.flow.spec.languages[language]
        return Say(render_text(text, language, self.flow.default_language, self.data),
                   voice.voice, voice.locale)

    def note(self, node: str | None, decision: str, **extra: Any) -> None:
        self.trail.append({"turn": self.session.turn + 1, "at": self.now.isoformat(),
                           "node": node, "event": self.event, "decision": decision, **extra})

    def finish(self) -> tuple[list[Action], Session]:
        s = self.session
        trail = (s.trail + self.trail)[-TRAIL_LIMIT:]
        new = s.model_copy(update=dict(
            node=self.node, attempts=self.attempts, question=self.question, status=self.status,
            data=self.data, route=self.route, outcome=self.outcome, trail=trail,
            turn=s.turn + 1, updated_at=self.now))
        return self.actions, new


def start(flow: Flow, call_id: str, caller: str, called: str, now: dt.datetime,
          data: dict[str, Any] | None = None) -> tuple[list[Action], Session]:
    """Begin a call at the flow's start node. ``turn`` of the returned session is 0."""
    session = Session(call_id=call_id, flow_id=flow.id, flow_version=flow.version,
                      started_at=now, updated_at=now, turn=-1,
                      data={"caller": caller, "called": called,
                            "language": flow.default_language, **(data or {})})
    t = _Turn(flow, session, now, "start", copy.deepcopy(session.data))
    _run(t, flow.spec.start)
    return t.finish()


def step(flow: Flow, session: Session, event: Event, now: dt.datetime
         ) -> tuple[list[Action], Session]:
    """Apply one caller event to the session; returns the driver's actions and the
    next session (``turn`` advanced by one)."""
    t = _Turn(flow, session, now, type(event).__name__, copy.deepcopy(session.data),
              node=session.node, attempts=session.attempts, question=session.question,
              status=session.status, route=session.route, outcome=session.outcome)
    if isinstance(event, CallEnded):
        t.status = "ended"
        if session.status == "active":
            t.outcome = t.outcome or "abandoned_in_ivr"
        t.note(session.node, f"call ended ({event.status})")
        return t.finish()
    if session.status == "ended":
        t.note(session.node, "ignored: call already ended")
        t.actions.append(Hangup())
        return t.finish()
    if session.node is None or session.node not in flow.nodes:
        return fail_safe(flow, session, event, now, f"node {session.node!r} not in flow")
    node = flow.nodes[session.node]
    if isinstance(event, CallerInput):
        _on_input(t, session.node, node, event)
    elif isinstance(event, RecordingDone):
        _on_recording(t, session.node, node, event)
    else:
        _on_leg_ended(t, session.node, node, event)
    return t.finish()


def fail_safe(flow: Flow, session: Session, event: Event | None, now: dt.datetime,
              reason: str) -> tuple[list[Action], Session]:
    """The safe path: an apology and the general queue, whatever state the call is in."""
    t = _Turn(flow, session, now, type(event).__name__ if event else "error",
              copy.deepcopy(session.data), node=session.node)
    _safe(t, reason)
    return t.finish()


# ------------------------------------------------------------------ running nodes


def _run(t: _Turn, node_id: str) -> None:
    """Enter ``node_id`` and run on until a node waits for the caller or ends the IVR."""
    for _ in range(MAX_HOPS):
        node = t.flow.nodes.get(node_id)
        if node is None:
            _safe(t, f"unknown node {node_id!r}")
            return
        t.node, t.attempts, t.question = node_id, 0, 0
        nxt = _enter(t, node_id, node)
        if nxt is None:
            return
        node_id = nxt
    _safe(t, f"more than {MAX_HOPS} nodes without waiting for the caller")


def _enter(t: _Turn, node_id: str, node: Node) -> str | None:
    """Do what a node does on entry; return the next node, or None to wait or stop."""
    if isinstance(node, SayNode):
        t.actions.append(t.say(node.text))
        return node.next
    if isinstance(node, PlayNode):
        t.actions.append(Play(node.url, node.loop))
        return node.next
    if isinstance(node, (GotoNode, SubflowNode)):
        return node.next
    if isinstance(node, SetNode):
        for path, value in node.values.items():
            set_path(t.data, path, value)
        return node.next
    if isinstance(node, BranchNode):
        for k, case in enumerate(node.cases):
            if holds(case.when, t.flow.spec, t.data, t.now):
                t.note(node_id, f"case {k} -> {case.next}")
                return case.next
        t.note(node_id, f"default -> {node.default}")
        return node.default
    if isinstance(node, LookupNode):
        record = t.flow.directory.lookup(node.source, get_path(t.data, node.key))
        if record is None:
            t.note(node_id, f"not found -> {node.not_found}")
            return node.not_found
        set_path(t.data, node.store_as, record)
        t.note(node_id, f"found -> {node.found}")
        return node.found
    if isinstance(node, (AskNode, CollectNode, SurveyNode, VoicemailNode)):
        _prompt(t, node)
        return None
    if isinstance(node, RouteNode):
        _route(t, node_id, node)
        return None
    if isinstance(node, TransferNode):
        if node.announce is not None:
            t.actions.append(t.say(node.announce))
        t.actions.append(Dial(node.number, node.timeout_seconds))
        t.status, t.outcome = "transferred", "transferred_out"
        t.note(node_id, f"transfer to {node.number}")
        return None
    if isinstance(node, HangupNode):
        if node.text is not None:
            t.actions.append(t.say(node.text))
        t.actions.append(Hangup())
        t.status = "ended"
        t.outcome = t.outcome or "completed_in_ivr"
        t.note(node_id, "hangup")
        return None
    assert isinstance(node, ReturnNode)  # only reachable in a sub-flow file run on its own
    t.actions.append(Hangup())
    t.status, t.outcome = "ended", t.outcome or "completed_in_ivr"
    return None


def _prompt(t: _Turn, node: AskNode | CollectNode | SurveyNode | VoicemailNode,
            retry: str | None = None) -> None:
    """Emit the node's prompt (or a retry prompt) and wait for the caller."""
    locale = t.flow.spec.languages[t.language].locale
    if isinstance(node, VoicemailNode):
        t.actions += [t.say(node.prompt), Record(node.max_length_seconds)]
        return
    if isinstance(node, SurveyNode):
        q = node.questions[t.question]
        prompts = ([t.say(retry)] if retry else []) + [t.say(q.prompt)]
        t.actions.append(Gather(tuple(prompts), ("dtmf",), 6, locale, num_digits=1))
        return
    if isinstance(node, CollectNode):
        text = node.prompt if retry is None else (node.invalid_prompt or node.prompt)
        t.actions.append(Gather((t.say(text),), ("dtmf", "speech"), node.timeout_seconds, locale,
                                num_digits=None, finish_on_key=node.finish_on_key))
        return
    if retry == "no_input":
        text = node.no_input_prompt or node.reprompt or node.prompt
    elif retry == "no_match":
        text = node.no_match_prompt or node.reprompt or node.prompt
    else:
        text = node.prompt
    only_single_keys = all(len(k) == 1 for i in node.intents.values() for k in i.keys)
    hints = tuple(node.speech_hints) or tuple(
        e for i in node.intents.values() for e in i.examples if len(e) <= 40)[:50]
    t.actions.append(Gather(
        (t.say(text),), tuple(node.input), node.timeout_seconds, locale,
        num_digits=1 if "dtmf" in node.input and only_single_keys else None,
        hints=hints if "speech" in node.input else ()))


def _route(t: _Turn, node_id: str, node: RouteNode) -> None:
    priority = node.priority + sum(r.add for r in node.priority_rules
                                   if holds(r.when, t.flow.spec, t.data, t.now))
    request = RouteRequest(queue=node.queue, skills=dict(node.skills),
                           language=node.language or t.language, priority=max(0, priority),
                           context={**_context(t.data, node.context, t.flow.spec.private),
                                    "trust": trust_level(t.data)},
                           callback_after_seconds=node.callback_after_seconds)
    if node.announce is not None:
        t.actions.append(t.say(node.announce))
    t.actions.append(Enqueue(request))
    t.status, t.route, t.outcome = "queued", request.as_dict(), "routed"
    t.note(node_id, f"route to queue {node.queue}", skills=request.skills,
           priority=request.priority)


def _context(data: dict[str, Any], keys: list[str] | None, private: list[str]
             ) -> dict[str, Any]:
    """What the agent sees: the named session values, or all of them but internals and
    the flow's ``private`` paths."""
    if keys is not None:
        return {k: copy.deepcopy(get_path(data, k)) for k in keys
                if get_path(data, k) is not None and k not in private}
    context = {k: copy.deepcopy(v) for k, v in data.items() if not k.startswith("_")}
    for path in private:
        parent, _, leaf = path.rpartition(".")
        holder = get_path(context, parent) if parent else context
        if isinstance(holder, dict):
            holder.pop(leaf, None)
    return context


def _safe(t: _Turn, reason: str) -> None:
    t.actions.append(t.say(APOLOGY.get(t.language, APOLOGY["en"])))
    request = RouteRequest(queue=GENERAL_QUEUE, skills={}, language=t.language, priority=0,
                           context={**_context(t.data, None, t.flow.spec.private),
                                    "trust": trust_level(t.data)},
                           reason=f"error: {reason}")
    t.actions.append(Enqueue(request))
    t.status, t.route, t.outcome = "queued", request.as_dict(), "error"
    t.note(t.node, "safe path: general queue", reason=reason)


# ------------------------------------------------------------------ caller events


def _escape_requested(t: _Turn, event: CallerInput, node: Node) -> bool:
    esc = t.flow.spec.escape
    if event.digits and event.digits.rstrip("#") in esc.keys:
        # In a collect, "0" is only an escape when a real entry is longer than one key.
        return not isinstance(node, CollectNode) or node.min_digits > 1
    said = f" {' '.join(re.findall(r'[a-z0-9]+', normalize(event.speech or '')))} "
    return any(f" {' '.join(re.findall(r'[a-z0-9]+', normalize(p)))} " in said
               for p in esc.phrases)


def _on_input(t: _Turn, node_id: str, node: Node, event: CallerInput) -> None:
    if event.speech is not None and len(event.speech) > MAX_SPEECH:
        event = CallerInput(event.digits, event.speech[:MAX_SPEECH], event.confidence)
    if event.speech and not isinstance(node, SurveyNode):
        _hear_sentiment(t, event.speech)
    if not isinstance(node, (AskNode, CollectNode, SurveyNode)):
        t.note(node_id, "ignored: input where none was asked for")
        _reissue(t, node_id, node)
        return
    if not isinstance(node, SurveyNode) and not event.empty and _escape_requested(t, event, node):
        t.note(node_id, f"caller asked for a human -> {t.flow.escape_target}",
               said=event.speech, keys=event.digits)
        set_path(t.data, "escaped_to_agent", True)
        _run(t, t.flow.escape_target)
        return
    if isinstance(node, AskNode):
        _on_ask(t, node_id, node, event)
    elif isinstance(node, CollectNode):
        _on_collect(t, node_id, node, event)
    else:
        _on_survey(t, node_id, node, event)


def _hear_sentiment(t: _Turn, speech: str) -> None:
    """Keep ``sentiment`` in session data over the whole call: a flag once raised stays
    raised, the score is the lowest heard, so a flow can raise priority or escalate."""
    now = analyze_sentiment(speech)
    heard: dict[str, Any] = now.as_dict()
    before = t.data.get("sentiment")
    if isinstance(before, dict):
        for flag in ("frustrated", "angry", "urgent", "repeat_caller", "fraud_risk", "escalate"):
            heard[flag] = bool(heard.get(flag)) or bool(before.get(flag))
        heard["score"] = min(now.score, float(before.get("score", 0.0)))
        heard["cues"] = list(dict.fromkeys([*before.get("cues", []), *now.cues]))[:20]
    t.data["sentiment"] = heard


def _reissue(t: _Turn, node_id: str, node: Node) -> None:
    """Repeat what the call was doing (e.g. a duplicate or stray webhook while queued)."""
    if isinstance(node, (AskNode, CollectNode, SurveyNode, VoicemailNode)):
        _prompt(t, node)
    elif isinstance(node, RouteNode) and t.route is not None:
        t.actions.append(Enqueue(RouteRequest(**t.route)))
    else:
        t.actions.append(Hangup())


def _on_ask(t: _Turn, node_id: str, node: AskNode, event: CallerInput) -> None:
    offered: list[str] = t.data.pop(OFFERED, None) or []
    if event.empty:
        _retry(t, node_id, node, "no_input")
        return
    chosen: str | None = None
    how = ""
    if event.digits:
        if offered and event.digits in ("1", "2"):
            chosen, how = offered[int(event.digits) - 1], f"choice {event.digits}"
        else:
            chosen = next((n for n, i in node.intents.items() if event.digits in i.keys), None)
            how = f"key {event.digits}"
    recognizer = t.flow.recognizers.get(node_id)
    ranked: list[IntentScore] = []
    if chosen is None and event.speech and recognizer is not None:
        ranked = recognizer.rank(event.speech, asr_confidence=event.confidence)
        top = [{"intent": s.intent, "confidence": round(s.confidence, 3)} for s in ranked[:3]]
        set_path(t.data, "nlu", {"text": event.speech, "ranked": top})
        threshold = node.threshold if node.threshold is not None else getattr(
            recognizer, "default_threshold", DEFAULT_THRESHOLD)
        if offered:  # the caller is choosing between the two we offered
            ranked = [s for s in ranked if s.intent in offered]
            threshold = UNSURE_FLOOR
        if ranked and ranked[0].confidence >= threshold:
            chosen, how = ranked[0].intent, f"speech {ranked[0].confidence:.2f}"
    if chosen is None and not offered and ranked and ranked[0].confidence >= UNSURE_FLOOR:
        if node.when_unsure == "agent":
            t.note(node_id, f"unsure ({ranked[0].intent} {ranked[0].confidence:.2f}) -> "
                            f"{t.flow.escape_target}", said=event.speech)
            _run(t, t.flow.escape_target)
            return
        if node.when_unsure == "offer_choices" and len(ranked) >= 2:
            _offer_choices(t, node_id, node, [ranked[0].intent, ranked[1].intent])
            return
    if chosen is None:
        _retry(t, node_id, node, "no_match", said=event.speech, keys=event.digits)
        return
    intent = node.intents[chosen]
    t.data[FAILED_IN_A_ROW] = 0
    set_path(t.data, node.store_as, chosen)
    for path, value in intent.set.items():
        set_path(t.data, path, value)
    t.note(node_id, f"intent {chosen} ({how}) -> {intent.next}")
    _run(t, intent.next)


def _offer_choices(t: _Turn, node_id: str, node: AskNode, choices: list[str]) -> None:
    """Unsure between intents: offer the two likeliest as a short menu."""
    t.data[OFFERED] = choices
    labels = []
    for choice in choices:
        label = node.intents[choice].label
        labels.append(t.text(label) if label is not None else choice.replace("_", " "))
    template = t.text(node.choices_prompt) if node.choices_prompt is not None else \
        CHOICES_PROMPT.get(t.language, CHOICES_PROMPT["en"])
    text = template.replace("{first}", labels[0]).replace("{second}", labels[1])
    voice = t.flow.spec.languages[t.language]
    t.note(node_id, f"unsure: offering {choices[0]} or {choices[1]}")
    t.actions.append(Gather((Say(text, voice.voice, voice.locale),), ("speech", "dtmf"),
                            node.timeout_seconds, voice.locale, num_digits=1,
                            hints=tuple(labels)))


def _retry(t: _Turn, node_id: str, node: AskNode | CollectNode, why: str, **said: Any) -> None:
    """Count a failed try; reprompt, or leave by the no-input / no-match / failure path.

    Failed tries are also counted across nodes: past the flow's ``max_failed_tries`` in a
    row (a no-match path that leads back to another ask, say) the caller goes to a human.
    """
    t.attempts += 1
    in_a_row = int(t.data.get(FAILED_IN_A_ROW, 0)) + 1
    t.data[FAILED_IN_A_ROW] = in_a_row
    if in_a_row >= t.flow.spec.max_failed_tries:
        t.note(node_id, f"{why}: {in_a_row} failed tries in a row -> {t.flow.escape_target}",
               **said)
        t.data[FAILED_IN_A_ROW] = 0
        _run(t, t.flow.escape_target)
        return
    if t.attempts < node.max_attempts:
        t.note(node_id, f"{why}: try {t.attempts + 1} of {node.max_attempts}", **said)
        _prompt(t, node, retry=why)
        return
    if isinstance(node, AskNode):
        target = (node.no_input if why == "no_input" else None) or node.no_match
    else:
        target = node.on_failure
    target = target or t.flow.escape_target
    t.note(node_id, f"{why}: tries exhausted -> {target}", **said)
    _run(t, target)


def _on_collect(t: _Turn, node_id: str, node: CollectNode, event: CallerInput) -> None:
    if event.empty:
        _retry(t, node_id, node, "no_input")
        return
    raw = event.digits if event.digits else spoken_digits(event.speech or "")
    value = raw.rstrip("#*")
    problem = invalid_digits(value, node)
    if problem:
        _retry(t, node_id, node, "no_match", reason=problem)
        return
    set_path(t.data, node.store_as, value)
    t.data[FAILED_IN_A_ROW] = 0
    t.note(node_id, f"collected {node.store_as} ({len(value)} digits) -> {node.next}")
    _run(t, node.next)


def _on_survey(t: _Turn, node_id: str, node: SurveyNode, event: CallerInput) -> None:
    q = node.questions[t.question]
    low, high = SURVEY_RANGE[q.scale]
    answer = (event.digits or spoken_digits(event.speech or ""))[:1]
    if answer.isdigit() and low <= int(answer) <= high:
        set_path(t.data, f"survey.{q.id}", int(answer))
        t.note(node_id, f"survey {q.id} = {answer}", scale=q.scale)
    elif t.attempts == 0:  # one more try, then the question is skipped: never trap a caller
        t.attempts = 1
        t.note(node_id, f"survey {q.id}: no valid answer, asking again")
        _prompt(t, node, retry={"en": f"Please press a key from {low} to {high}.",
                                "es": f"Por favor oprima una tecla del {low} al {high}."}
                .get(t.language, f"Please press a key from {low} to {high}."))
        return
    else:
        t.note(node_id, f"survey {q.id}: skipped")
    if t.question + 1 < len(node.questions):
        t.question, t.attempts = t.question + 1, 0
        _prompt(t, node)
        return
    if node.thanks is not None:
        t.actions.append(t.say(node.thanks))
    _run(t, node.next)


def _on_recording(t: _Turn, node_id: str, node: Node, event: RecordingDone) -> None:
    if not isinstance(node, VoicemailNode):
        t.note(node_id, "ignored: recording where none was asked for")
        _reissue(t, node_id, node)
        return
    set_path(t.data, "voicemail", {"mailbox": node.mailbox, "url": event.url,
                                   "duration_seconds": event.duration_seconds})
    t.outcome = "voicemail"
    t.note(node_id, f"voicemail for {node.mailbox} ({event.duration_seconds}s) -> {node.next}")
    _run(t, node.next)


def _on_leg_ended(t: _Turn, node_id: str, node: Node, event: LegEnded) -> None:
    status = event.status.lower()
    if isinstance(node, RouteNode):
        if status in ("bridged", "completed") and node.after:
            t.status = "active"
            t.note(node_id, f"agent leg ended ({status}) -> {node.after}")
            _run(t, node.after)
            return
        if status == "hangup":
            t.outcome = "abandoned_in_queue"
        t.note(node_id, f"queue leg ended ({status})")
        t.actions.append(Hangup())
        t.status = "ended"
        return
    if isinstance(node, TransferNode):
        if status == "completed":
            target = node.after
        else:
            target = node.on_failure or t.flow.escape_target
        t.note(node_id, f"transfer ended ({status}) -> {target or 'hangup'}")
        if target is None:
            t.actions.append(Hangup())
            t.status = "ended"
            return
        t.status = "active"
        _run(t, target)
        return
    t.note(node_id, f"ignored: leg ended ({status}) where no leg was open")
    _reissue(t, node_id, node)
