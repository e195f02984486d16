"""Property tests: whatever callers do, and whatever flows admins write, the engine never
crashes and every call ends in a hangup, a route or a transfer."""

from __future__ import annotations

import datetime as dt

import yaml
from conftest import FLOWS, KNOWN_CALLER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.engine import CallEnded, CallerInput, LegEnded, RecordingDone, start, step
from ivr.errors import FlowError
from ivr.flows import load_flow

FLOWS_BY_NAME = {"bank": load_flow(FLOWS / "bank.yaml"),
                 "quickstart": load_flow(FLOWS / "quickstart.yaml")}

times = st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2027, 12, 31),
                     timezones=st.just(dt.timezone.utc))
caller_input = st.builds(
    CallerInput,
    digits=st.one_of(st.none(), st.text("0123456789*#", max_size=12)),
    speech=st.one_of(st.none(), st.text(max_size=80),
                     st.sampled_from(["billing", "my card was stolen", "agent", "yes", "no",
                                      "uh I dunno", "cuál es mi saldo", "five"])),
    confidence=st.one_of(st.none(), st.floats(0, 1)))
events = st.one_of(
    caller_input, caller_input, caller_input,
    st.builds(RecordingDone, url=st.one_of(st.none(), st.just("https://r/1")),
              duration_seconds=st.integers(0, 300)),
    st.builds(LegEnded, status=st.sampled_from(["bridged", "hangup", "completed", "busy",
                                                "no-answer", "failed", "queue-full", "x"])))
ENDED = {"queued", "transferred", "ended"}


def drain(flow, session, now, limit=200):
    """Feed silence (as Twilio reports it: an empty recording at a voicemail) until the
    IVR part is over; it must be, within ``limit`` steps."""
    for _ in range(limit):
        if session.status in ENDED:
            return session
        waiting_for = flow.nodes[session.node].type if session.node else ""
        silence = RecordingDone() if waiting_for == "voicemail" else CallerInput()
        actions, session = step(flow, session, silence, now)
        assert actions, "a step must always tell the caller something"
    raise AssertionError(f"call still in the IVR after {limit} silent turns at {session.node}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(FLOWS_BY_NAME)), now=times,
       caller=st.sampled_from([KNOWN_CALLER, "+14155550101", "+15005550006", "anonymous"]),
       script=st.lists(events, max_size=25))
def test_random_callers_never_crash_and_always_end(name, now, caller, script):
    flow = FLOWS_BY_NAME[name]
    actions, session = start(flow, "CA" + "1" * 32, caller, "+14155550100", now)
    assert actions
    for event in script:
        before = session.turn
        actions, session = step(flow, session, event, now)
        assert session.turn == before + 1
        assert actions or session.status == "ended"
        assert session.node is None or session.node in flow.nodes
    if session.status == "active":
        session = drain(flow, session, now)
    assert session.status in ENDED
    if session.status == "queued":
        assert session.route["queue"] and session.route["language"] in flow.spec.languages
    _, final = step(flow, session, CallEnded("completed"), now)
    assert final.status == "ended"


# ---------------------------------------------------------------- random flows

NAMES = [f"n{k}" for k in range(8)]


@st.composite
def random_flows(draw):
    """Flow files as an admin might write them: any kinds, any links, some broken."""
    count = draw(st.integers(1, 8))
    names = NAMES[:count]
    target = st.sampled_from(names + ["nowhere"])
    nodes = {}
    for name in names:
        kind = draw(st.sampled_from(["say", "ask", "collect", "branch", "route", "hangup",
                                     "set", "survey"]))
        if kind == "say":
            nodes[name] = {"type": "say", "text": "hello {caller}", "next": draw(target)}
        elif kind == "set":
            nodes[name] = {"type": "set", "values": {"x": 1}, "next": draw(target)}
        elif kind == "ask":
            intents = {f"i{k}": {"keys": [str(k + 1)], "examples": [f"word{k}", "thing"],
                                 "next": draw(target)}
                       for k in range(draw(st.integers(1, 3)))}
            node = {"type": "ask", "prompt": "choose", "intents": intents,
                    "max_attempts": draw(st.integers(1, 3))}
            if draw(st.booleans()):
                node["no_match"] = draw(target)
            nodes[name] = node
        elif kind == "collect":
            nodes[name] = {"type": "collect", "prompt": "digits", "store_as": "d",
                           "min_digits": 2, "max_digits": 4, "next": draw(target),
                           "on_failure": draw(target)}
        elif kind == "branch":
            nodes[name] = {"type": "branch", "default": draw(target),
                           "cases": [{"when": {"var": "x", "equals": 1}, "next": draw(target)}]}
        elif kind == "survey":
            nodes[name] = {"type": "survey", "next": draw(target),
                           "questions": [{"id": "csat", "prompt": "rate", "scale": "csat"}]}
        elif kind == "route":
            nodes[name] = {"type": "route", "queue": "q", "skills": {"s": 2}}
        else:
            nodes[name] = {"type": "hangup"}
    return {"start": draw(st.sampled_from(names)), "nodes": nodes}


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=random_flows(), script=st.lists(caller_input, max_size=12))
def test_random_flows_are_rejected_clearly_or_always_end(tmp_path, spec, script):
    path = tmp_path / "random.yaml"
    path.write_text(yaml.safe_dump(spec))
    try:
        flow = load_flow(path)
    except FlowError as exc:
        assert exc.problems and all(p.startswith(f"{path}: ") for p in exc.problems)
        return
    now = dt.datetime(2026, 11, 23, 15, tzinfo=dt.timezone.utc)
    _, session = start(flow, "CA" + "2" * 32, "+15005550006", "+1", now)
    for event in script:
        _, session = step(flow, session, event, now)
        assert session.outcome != "error", session.trail[-1]
    session = drain(flow, session, now)
    assert session.outcome != "error", session.trail[-1]
