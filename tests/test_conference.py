"""The conference bridge (``IVR_AGENT_BRIDGE=conference``, issue 12): caller and agent in
one room per call, so that Hold moves the caller's leg to hold music, a warm transfer
has three-way audio, and the hand-over keeps caller and target together. Every REST
request goes through the outbox to the twilio library's client, pointed at a stand-in
for the API on loopback; the tests assert the exact requests, in order."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from urllib.parse import unquote

import pytest
from fake_twilio import FakeTwilioAPI
from hypothesis import given, settings
from hypothesis import strategies as st
from test_auth import PASSWORD, sign_in
from test_live_routing import ACCOUNT, PUBLIC, Center, redirect_target
from test_outbox import give_up

from ivr.errors import IVRError
from ivr.live.conference import Room, agent_label, fold, fold_all, room_name
from ivr.live.outbox import MAX_TRIES
from ivr.live.telephony import TelephonyError
from ivr.twiml import conference_agent, conference_caller, conference_wait, on_hold_music
from ivr.web.settings import Settings

CONF = "CF" + "c" * 32
ROOT = f"/2010-04-01/Accounts/{ACCOUNT}"


class Desk:
    """A signed-in agent's browser on the app of a :class:`Center`."""

    def __init__(self, center: Center, name: str) -> None:
        center.app.extensions["ivr.users"].add(name, "agent", PASSWORD)
        self.client = center.app.test_client()
        sign_in(self.client, name)
        page = self.client.get("/agent").get_data(as_text=True)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post(self, path: str, body: dict | None = None):
        r = self.client.post(path, json=body or {}, headers={
            "X-CSRF-Token": self.csrf, "Accept": "application/json"})
        assert r.status_code == 200, (path, r.get_json())
        return r

    def state(self):
        return self.client.get("/agent/state", headers={"Accept": "application/json"}).get_json()


def short(req) -> tuple[str, str, dict[str, str]]:
    """A request as (method, path below the account, the form's fields that matter)."""
    keep = ("Hold", "HoldUrl", "EndConferenceOnExit", "To", "From", "Label", "Url",
            "StartConferenceOnEnter", "StatusCallback", "Timeout")
    return req.method, unquote(req.path.removeprefix(ROOT)), {
        k: v for k, v in req.form.items() if k in keep}


class Room_:
    """Twilio's side of the call's room: the status callbacks it posts."""

    def __init__(self, center: Center, sid: str) -> None:
        self.center, self.sid, self.seq = center, sid, itertools.count(1)

    def post(self, event: str, call_sid: str = "", label: str = "", hold: bool = False):
        form = {"ConferenceSid": CONF, "FriendlyName": room_name(self.sid),
                "StatusCallbackEvent": event, "SequenceNumber": str(next(self.seq)),
                "Timestamp": "Mon, 23 Nov 2026 15:00:00 +0000", "AccountSid": ACCOUNT}
        if call_sid:
            form.update(CallSid=call_sid, ParticipantLabel=label, Hold=str(hold).lower(),
                        Muted="false")
        self.center.twilio("/voice/conference?call=" + self.sid, form)


@pytest.fixture
def center():
    with FakeTwilioAPI() as api:
        yield Center(api, agent_bridge="conference")


def connected_to_bob(center: Center) -> tuple[str, str, Room_]:
    """A call answered by bob through the room: (caller CallSid, bob's leg, the room)."""
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    redirect, dial = center.api.requests
    assert redirect_target(redirect) == (f"{PUBLIC}/voice/connect",
                                         {"call": [sid], "agent": ["bob"]})
    assert short(dial) == ("POST", "/Calls.json", {
        "To": "client:bob", "From": "+14155550100", "Timeout": "15",
        "Url": f"{PUBLIC}/voice/agent-join?call={sid}&agent=bob",
        "StatusCallback": f"{PUBLIC}/voice/agent-leg?call={sid}&agent=bob"})
    caller = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    leg = "CA" + "b" * 32
    agent = center.twilio(f"/voice/agent-join?call={sid}&agent=bob", {"CallSid": leg})
    assert caller.find("Dial/Conference").text == agent.find("Dial/Conference").text
    room = Room_(center, sid)
    room.post("conference-start")
    room.post("participant-join", sid, "caller")
    room.post("participant-join", leg, agent_label("bob"))
    center.api.requests.clear()
    return sid, leg, room


# ------------------------------------------------------------------ TwiML


def test_caller_and_agent_meet_in_a_room_named_without_the_number(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    dial = doc.find("Dial")
    assert dial.get("action") == f"/voice/agent-done?call={sid}&agent=bob"
    conf = dial.find("Conference")
    name = conf.text
    assert name == room_name(sid) and re.fullmatch(r"ivr-[0-9a-f]{24}", name)
    assert "5550102" not in name and sid not in name
    assert conf.attrib == {
        "startConferenceOnEnter": "false", "endConferenceOnExit": "true", "beep": "false",
        "waitUrl": f"/voice/conference-wait?call={sid}", "waitMethod": "POST",
        "participantLabel": "caller", "statusCallback": f"/voice/conference?call={sid}",
        "statusCallbackMethod": "POST", "statusCallbackEvent": "start end join leave hold"}
    wait = center.twilio(f"/voice/conference-wait?call={sid}", {"CallSid": sid})
    assert [e.tag for e in wait] == ["Say", "Play"]  # what a conference waitUrl allows
    # The agent answers the leg the sender rang: the whisper, then the same room.
    agent = center.twilio(f"/voice/agent-join?call={sid}&agent=bob",
                          {"CallSid": "CA" + "b" * 32})
    assert agent.find("Say").text.startswith("cards call. James Carter")
    conf = agent.find("Dial/Conference")
    assert conf.text == name and conf.get("participantLabel") == agent_label("bob")
    assert (conf.get("startConferenceOnEnter"), conf.get("endConferenceOnExit")) == (
        "true", "true")
    assert center.router().calls[sid].state.value == "connected"
    hold = center.twilio("/voice/hold-music", {"CallSid": sid})
    assert hold.find("Play").get("loop") == "0"
    # The room ends (the agent hung up): the caller's Dial goes on to the survey.
    after = center.twilio(dial.get("action"), {"CallSid": sid, "DialCallStatus": "answered"})
    assert after.find("Gather") is not None
    assert center.router().agents["bob"].state.value == "wrap_up"


def test_the_rooms_callbacks_are_kept_apart_from_the_floor_log(center):
    floor = center.app.extensions["ivr.floor"]
    before = floor.last_id()
    sid, leg, room = connected_to_bob(center)  # three callbacks of the room
    room.post("participant-hold", sid, "caller", hold=True)
    assert floor.last_id() == before  # so they wake no agent page
    live = center.app.extensions["ivr.routing"].room(sid).current()
    assert live.sid == CONF and live.participants[sid].hold
    assert live.participants[leg].label == agent_label("bob")
    assert center.app.extensions["ivr.routing"].room(sid).sid_of(agent_label("bob")) == leg


def test_an_unanswered_agent_leg_moves_the_caller_to_the_queue_wait(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    center.api.requests.clear()
    center.twilio(f"/voice/agent-leg?call={sid}&agent=bob",
                  {"CallSid": "CA" + "b" * 32, "CallStatus": "no-answer"})
    (req,) = center.api.requests  # nobody else is free: to the queue's wait music
    assert redirect_target(req) == (f"{PUBLIC}/voice/requeue", {"call": [sid]})
    doc = center.twilio(f"/voice/requeue?call={sid}", {"CallSid": sid})
    assert doc.find("Enqueue").text == "cards"
    assert doc.find("Enqueue").get("waitUrl") == "/voice/wait?queue=cards"


def test_an_offer_timing_out_in_the_room_moves_the_caller_to_the_queue_wait(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    center.api.requests.clear()
    routing = center.app.extensions["ivr.routing"]
    center.now += dt.timedelta(seconds=20)  # past the 15 s reservation timeout
    routing.run(routing.tick(center.now))
    (req,) = center.api.requests
    assert redirect_target(req) == (f"{PUBLIC}/voice/requeue", {"call": [sid]})
    assert center.router().calls[sid].state.value == "waiting"


def test_an_offer_rejected_in_the_room_moves_the_caller_to_the_queue_wait(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    center.api.requests.clear()
    bob = Desk(center, "bob")
    bob.post(f"/agent/calls/{sid}/reject")
    (req,) = center.api.requests
    assert redirect_target(req) == (f"{PUBLIC}/voice/requeue", {"call": [sid]})


def test_a_call_with_no_dialled_number_is_bridged_by_dial(center):
    """No number to show the agent leg: the caller's call dials the agent instead, and
    the desktop's room requests are recorded on the floor only."""
    from conftest import KNOWN_CALLER, call_sid

    from ivr.console import TwimlCaller

    center.agent("bob", {"cards": 5}, "client:bob")
    script = ["2"]
    sid = TwimlCaller(center.transport, lambda p: script.pop(0) if script else None).call(
        call_sid(), KNOWN_CALLER, "").call_sid
    (req,) = center.api.requests  # the redirect only: no agent leg is rung
    assert redirect_target(req)[0] == f"{PUBLIC}/voice/connect"
    doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    assert doc.find("Dial/Client").text == "bob" and doc.find("Dial/Conference") is None
    center.twilio(f"/voice/whisper?call={sid}&agent=bob", {"CallSid": "CA" + "b" * 32})
    Desk(center, "bob").post(f"/agent/calls/{sid}/hold")
    assert len(center.api.requests) == 1


def test_the_bridge_twiml_is_valid_twiml(twiml_schema):
    docs = [conference_caller(room_name("CA1"), "/voice/agent-done?call=CA1&agent=bob",
                              "/voice/conference-wait?call=CA1", "/voice/conference?call=CA1"),
            conference_agent("cards call.", room_name("CA1"), agent_label("bob"),
                             "/voice/conference?call=CA1"),
            conference_wait("about 3 minutes", "https://example.com/m.mp3"),
            on_hold_music("https://example.com/m.mp3")]
    for doc in docs:  # (the schema predates participantLabel, which Twilio documents)
        stripped = re.sub(r' participantLabel="[^"]*"', "", doc)
        assert not list(twiml_schema.iter_errors(stripped)), doc


def test_the_bridge_is_a_checked_setting():
    assert Settings.from_env({}).agent_bridge == "dial"
    assert Settings.from_env({"IVR_AGENT_BRIDGE": "conference"}).agent_bridge == "conference"
    with pytest.raises(IVRError, match="IVR_AGENT_BRIDGE: 'bridge' is not one of dial, "
                                       "conference"):
        Settings.from_env({"IVR_AGENT_BRIDGE": "bridge"})


# ------------------------------------------------------------------ REST through the outbox


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_center(request, tmp_path):
    """The conference bridge on each store: in memory, SQLite and PostgreSQL (the outbox,
    the floor log and the router's state where a server keeps them)."""
    where = {"memory": lambda: {}, "sqlite": lambda: {"data_dir": tmp_path / "var"},
             "postgres": lambda: {"database_url": request.getfixturevalue("pg_url")()}}
    with FakeTwilioAPI() as api:
        yield Center(api, agent_bridge="conference", **where[request.param]())


def test_hold_resume_and_a_warm_transfer_are_rest_changes_of_the_room_in_order(any_center):
    center = any_center
    sid, leg, room = connected_to_bob(center)
    center.agent("alice", {"cards": 3}, "client:alice")
    bob = Desk(center, "bob")
    alice = Desk(center, "alice")
    participants = f"/Conferences/{CONF}/Participants"
    caller = f"{participants}/{sid}.json"
    music = f"{PUBLIC}/voice/hold-music"

    bob.post(f"/agent/calls/{sid}/hold")
    bob.post(f"/agent/calls/{sid}/resume")
    assert [short(r) for r in center.api.requests] == [
        ("POST", caller, {"Hold": "true", "HoldUrl": music}),
        ("POST", caller, {"Hold": "false"})]
    center.api.requests.clear()

    warm = {"mode": "warm", "agent": "alice", "reason": "needs_other_skill", "queue": "cards"}
    bob.post(f"/agent/calls/{sid}/transfer", warm)
    consult = ("POST", f"/Conferences/{room_name(sid)}/Participants.json", {
        "To": "client:alice", "From": "+14155550100", "Label": agent_label("alice"),
        "StartConferenceOnEnter": "true", "EndConferenceOnExit": "false", "Timeout": "15",
        "StatusCallback": f"{PUBLIC}/voice/consult-leg?call={sid}&agent=alice"})
    assert [short(r) for r in center.api.requests] == [
        ("POST", caller, {"Hold": "true", "HoldUrl": music}), consult]
    center.api.requests.clear()
    alice.post(f"/agent/consults/{sid}/decline")  # the caller is back with bob
    assert [short(r) for r in center.api.requests] == [
        ("DELETE", f"{participants}/{agent_label('alice')}.json", {}),
        ("POST", caller, {"Hold": "false"})]
    center.api.requests.clear()

    bob.post(f"/agent/calls/{sid}/transfer", warm)
    room.post("participant-join", "CA" + "a" * 32, agent_label("alice"))
    center.api.requests.clear()
    alice.post(f"/agent/consults/{sid}/accept")
    # alice keeps the room alive, bob leaves it, the caller is off hold: no redirect
    assert [short(r) for r in center.api.requests] == [
        ("POST", f"{participants}/{agent_label('alice')}.json",
         {"EndConferenceOnExit": "true"}),
        ("POST", f"{participants}/{agent_label('bob')}.json",
         {"EndConferenceOnExit": "false"}),
        ("POST", caller, {"Hold": "false"}),
        ("DELETE", f"{participants}/{agent_label('bob')}.json", {})]
    call = center.router().calls[sid]
    assert (call.agent_id, call.state.value) == ("alice", "connected")
    (transfer,) = [e for e in center.app.extensions["ivr.floor"].events(call_id=sid)
                   if e.kind == "transfer"]
    assert (transfer.agent_id, transfer.data["mode"], transfer.data["reason"],
            transfer.data["original_intent"]) == ("bob", "warm", "needs_other_skill", "cards")
    assert [w["id"] for w in bob.state()["wrap_up"]] == [sid]
    # bob's leg ending (he was taken out) changes nothing; alice's hanging up ends the call
    center.twilio(f"/voice/agent-leg?call={sid}&agent=bob",
                  {"CallSid": leg, "CallStatus": "completed"})
    assert center.router().calls[sid].agent_id == "alice"
    after = center.twilio(f"/voice/agent-done?call={sid}&agent=bob",
                          {"CallSid": sid, "DialCallStatus": "answered"})
    assert after.find("Gather") is not None  # the survey
    assert center.router().agents["alice"].state.value == "wrap_up"


def test_a_consult_nobody_answers_brings_the_caller_back(center):
    sid, _, _ = connected_to_bob(center)
    center.agent("alice", {"cards": 3}, "client:alice")
    bob = Desk(center, "bob")
    bob.post(f"/agent/calls/{sid}/transfer", {"mode": "warm", "agent": "alice",
                                              "reason": "escalation"})
    center.api.requests.clear()
    center.twilio(f"/voice/consult-leg?call={sid}&agent=alice",
                  {"CallSid": "CA" + "a" * 32, "CallStatus": "no-answer"})
    assert [short(r)[:2] for r in center.api.requests] == [
        ("DELETE", f"/Conferences/{CONF}/Participants/{agent_label('alice')}.json"),
        ("POST", f"/Conferences/{CONF}/Participants/{sid}.json")]
    assert center.api.requests[-1].form["Hold"] == "false"
    mine = bob.state()["calls"][0]
    assert mine["consult"] is None and mine["declined"] and mine["agent_id"] == "bob"


def test_a_consult_twilio_refuses_ends_and_resumes_the_caller(center, monkeypatch):
    sid, _, _ = connected_to_bob(center)
    center.agent("alice", {"cards": 3}, "client:alice")
    bob = Desk(center, "bob")
    routing = center.app.extensions["ivr.routing"]
    tries = []

    def refused(*args, **kwargs):  # the API takes the hold but refuses the participant
        tries.append(args)
        raise TelephonyError("adding the participant failed: HTTP 500")

    monkeypatch.setattr(routing.telephony, "add_participant", refused)
    bob.post(f"/agent/calls/{sid}/transfer", {"mode": "warm", "agent": "alice",
                                              "reason": "escalation"})
    give_up(routing)
    assert len(tries) == MAX_TRIES
    assert [r.form["Hold"] for r in center.api.requests] == ["true", "false"]
    mine = bob.state()["calls"][0]  # held for the consult, back with bob when it failed
    assert mine["consult"] is None and mine["state"] == "connected"


def test_a_hold_twilio_refuses_leaves_the_caller_with_the_agent(center):
    sid, _, _ = connected_to_bob(center)
    bob = Desk(center, "bob")
    routing = center.app.extensions["ivr.routing"]
    center.api.fault = 500
    bob.post(f"/agent/calls/{sid}/hold")
    give_up(routing)  # three tries, then given up: nothing else moves
    call = center.router().calls[sid]
    assert (call.agent_id, call.state.value) == ("bob", "connected")
    center.api.fault = None
    bob.post(f"/agent/calls/{sid}/resume")
    (req,) = center.api.requests
    assert req.form["Hold"] == "false"


# ------------------------------------------------------------------ queue transfer


@pytest.mark.parametrize("bridge", ["dial", "conference"])
def test_a_transfer_to_a_queue_with_nobody_free_moves_the_caller_to_its_wait(bridge):
    with FakeTwilioAPI() as api:
        center = Center(api, agent_bridge=bridge)
        center.agent("bob", {"cards": 5, "billing": 3}, "client:bob")
        sid = center.call(["2"])
        center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
        join = "agent-join" if bridge == "conference" else "whisper"
        center.twilio(f"/voice/{join}?call={sid}&agent=bob", {"CallSid": "CA" + "b" * 32})
        bob = Desk(center, "bob")
        api.requests.clear()
        bob.post(f"/agent/calls/{sid}/transfer", {"queue": "billing", "reason": "misrouted",
                                                  "skills": {"billing": 2}})
        (req,) = api.requests  # at once, not when an agent is reserved
        assert redirect_target(req) == (f"{PUBLIC}/voice/requeue", {"call": [sid]})
        doc = center.twilio(f"/voice/requeue?call={sid}", {"CallSid": sid})
        assert doc.find("Enqueue").text == "billing"
        wait = center.twilio(doc.find("Enqueue").get("waitUrl"),
                             {"CallSid": sid, "QueuePosition": "1"})
        assert "You are next in line." in wait.find("Say").text
        # an agent comes free: the caller is taken from the queue to them
        center.agent("alice", {"billing": 4}, "client:alice")
        assert redirect_target(api.requests[1]) == (f"{PUBLIC}/voice/connect",
                                                    {"call": [sid], "agent": ["alice"]})
        (transfer,) = [e for e in center.app.extensions["ivr.floor"].events(call_id=sid)
                       if e.kind == "transfer"]
        assert transfer.data["to_queue"] == "billing" and transfer.data["reason"] == "misrouted"


def test_with_the_dial_bridge_hold_and_consults_send_nothing():
    with FakeTwilioAPI() as api:
        center = Center(api)
        center.agent("bob", {"cards": 5}, "client:bob")
        center.agent("alice", {"cards": 3}, "client:alice")
        sid = center.call(["2"])
        doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
        assert doc.find("Dial/Client").text == "bob"  # the dial bridge, as before
        center.twilio(f"/voice/whisper?call={sid}&agent=bob", {"CallSid": "CA" + "b" * 32})
        bob = Desk(center, "bob")
        api.requests.clear()
        bob.post(f"/agent/calls/{sid}/hold")
        bob.post(f"/agent/calls/{sid}/resume")
        bob.post(f"/agent/calls/{sid}/transfer", {"mode": "warm", "agent": "alice",
                                                  "reason": "escalation"})
        assert api.requests == []


# ------------------------------------------------------------------ the fold


def history(draw) -> list[dict[str, str]]:
    """A room's callbacks in Twilio's order: the conference starts, participants join,
    hold and unhold, leave; it may end."""
    events = []
    seq = itertools.count(1)
    sids = [f"CA{n:032x}" for n in range(draw(st.integers(1, 3)))]
    present: dict[str, bool] = {}

    def post(kind: str, sid: str = "", hold: bool = False) -> None:
        e = {"ConferenceSid": CONF, "StatusCallbackEvent": kind,
             "SequenceNumber": str(next(seq)), "Timestamp": "1700000000"}
        if sid:
            e.update(CallSid=sid, ParticipantLabel=f"label-{sid[-1]}", Hold=str(hold).lower())
        events.append(e)

    post("conference-start")
    for _ in range(draw(st.integers(0, 12))):
        sid = draw(st.sampled_from(sids))
        if not present.get(sid):
            post("participant-join", sid)
            present[sid] = True
        else:
            kind = draw(st.sampled_from(["participant-hold", "participant-unhold",
                                         "participant-leave"]))
            post(kind, sid, hold=kind == "participant-hold")
            present[sid] = kind != "participant-leave"
    if draw(st.booleans()):
        post("conference-end")
    return events


@st.composite
def shuffled(draw):
    events = history(draw)
    repeats = draw(st.lists(st.sampled_from(events), max_size=4))
    return events, draw(st.permutations(events + repeats))


@settings(max_examples=200, deadline=None)
@given(shuffled())
def test_the_fold_of_a_rooms_callbacks_ignores_their_order_and_repeats(case):
    in_order, arrived = case
    expected = fold_all(in_order)
    assert fold_all(arrived) == expected
    conf = expected.conferences[CONF]
    last: dict[str, dict[str, str]] = {}
    for e in in_order:
        if e.get("CallSid"):
            last[e["CallSid"]] = e
    for sid, e in last.items():  # the state of each participant is that of its last event
        p = conf.participants[sid]
        assert p.present == (e["StatusCallbackEvent"] != "participant-leave")
        assert p.hold == (e["Hold"] == "true") and p.label == f"label-{sid[-1]}"
    ended = in_order[-1]["StatusCallbackEvent"] == "conference-end"
    assert conf.ended == ended and (expected.current() is None) == ended


def test_the_live_room_is_the_latest_started_and_not_ended():
    first = {"ConferenceSid": "CF1", "StatusCallbackEvent": "conference-start",
             "Timestamp": "Mon, 23 Nov 2026 15:00:00 +0000"}
    again = {"ConferenceSid": "CF2", "StatusCallbackEvent": "conference-start",
             "Timestamp": "Mon, 23 Nov 2026 15:05:00 +0000"}
    ended = {**first, "StatusCallbackEvent": "conference-end",
             "Timestamp": "Mon, 23 Nov 2026 15:04:00 +0000"}
    room = fold_all([again, ended, first])
    assert room.current().sid == "CF2"
    assert fold(Room(), {"StatusCallbackEvent": "participant-join"}) == Room()
