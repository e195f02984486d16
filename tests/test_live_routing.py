"""Live routing end to end: a call routed by the IVR reserves the best agent, the twilio
REST client (pointed at a local stand-in for the API) moves the call to that agent with a
whisper, the agent API drives the rest. The tests assert the exact API requests."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import FLOWS, KNOWN_CALLER, OPEN, call_sid
from fake_twilio import FakeTwilioAPI

from ivr.console import FlaskTransport, TwimlCaller, sign
from ivr.live.calls_store import MemoryStore
from ivr.web import create_app
from ivr.web.settings import Settings

TOKEN = "f" * 32
ACCOUNT = "AC" + "1" * 32
PUBLIC = "https://ivr.example.com"
AGENT_TOKEN = "a" * 32
ADMIN_TOKEN = "b" * 32
AGENT_AUTH = {"Authorization": f"Bearer {AGENT_TOKEN}"}
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Center:
    """The app with live routing, a fake Twilio API, a clock and helpers."""

    def __init__(self, api: FakeTwilioAPI, data_dir=None, database_url=None,
                 **settings) -> None:
        self.now = OPEN
        self.api = api
        shared = data_dir or database_url
        self.app = create_app(Settings(
            flows_dir=FLOWS, store="sqlite" if shared else "memory", data_dir=data_dir or
            "var", database_url=database_url, auth_token=TOKEN, account_sid=ACCOUNT,
            twilio_api_url=api.url, public_url=PUBLIC, agent_token=AGENT_TOKEN,
            admin_token=ADMIN_TOKEN, reload_interval_s=0, routing_tick_s=0, **settings),
            store=None if shared else MemoryStore(),
            clock=lambda: self.now)
        self.store = self.app.extensions["ivr.store"]
        self.client = self.app.test_client()
        self.transport = FlaskTransport(self.app, TOKEN, base_url=PUBLIC)

    def twilio(self, path: str, params: dict[str, str]) -> ET.Element:
        """A signed webhook as Twilio sends it to the public URL."""
        sig = sign(TOKEN, PUBLIC + path, params)
        r = self.client.post(path, data=params, headers={"X-Twilio-Signature": sig})
        assert r.status_code in (200, 204), r.data
        return ET.fromstring(r.data) if r.status_code == 200 else None

    def agent(self, agent_id: str, skills: dict[str, int], contact: str,
              languages: tuple[str, ...] = ("en",)) -> None:
        r = self.client.put(f"/agents/{agent_id}", headers=ADMIN_AUTH, json={
            "name": agent_id.title(), "skills": skills, "languages": list(languages),
            "contact": contact})
        assert r.status_code == 200, r.json
        r = self.client.post(f"/agents/{agent_id}/state", headers=AGENT_AUTH,
                             json={"state": "available"})
        assert r.status_code == 200, r.json

    def call(self, answers: list[str], caller: str = KNOWN_CALLER) -> str:
        script = list(answers)
        result = TwimlCaller(self.transport, lambda p: script.pop(0) if script else None).call(
            call_sid(), caller, "+14155550100")
        assert result.ended_by == "enqueue", result
        return result.call_sid

    def router(self):
        return self.app.extensions["ivr.routing"].state.read()


@pytest.fixture
def center():
    with FakeTwilioAPI() as api:
        yield Center(api)


def redirect_target(req) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(req.form["Url"])
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


def test_best_agent_is_reserved_connected_with_whisper_and_completed(center, twiml_schema):
    center.agent("alice", {"cards": 2}, "client:alice")
    center.agent("bob", {"cards": 5, "billing": 3}, "+14155550177")
    sid = center.call(["2"])  # James presses 2: cards
    (req,) = center.api.requests
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{sid}.json"
    target, query = redirect_target(req)
    assert target == f"{PUBLIC}/voice/connect"
    assert query == {"call": [sid], "agent": ["bob"]}  # level 5 beats level 2
    assert req.form["Method"] == "POST"
    assert req.authorization.startswith("Basic ")

    doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
    assert not list(twiml_schema.iter_errors(ET.tostring(doc, encoding="unicode")))
    dial = doc.find("Dial")
    number = dial.find("Number")
    assert number.text == "+14155550177" and number.get("url").startswith("/voice/whisper?")
    assert dial.get("timeout") == "15"

    whisper = center.twilio(number.get("url"), {"CallSid": "CA" + "9" * 32})
    text = whisper.find("Say").text
    assert text.startswith("cards call. James Carter, standard customer.")
    assert "Reason: cards." in text
    router = center.router()
    assert router.calls[sid].state.value == "connected"
    assert router.agents["bob"].state.value == "busy"

    after = center.twilio(dial.get("action"), {"CallSid": sid, "DialCallStatus": "completed"})
    assert after.find("Gather") is not None  # the flow's post-call survey
    assert "how satisfied" in after.find("Gather/Say").text
    assert center.router().agents["bob"].state.value == "wrap_up"
    kinds = [d["kind"] for d in center.client.get(f"/calls/{sid}/decisions",
                                                  headers=AGENT_AUTH).json["decisions"]]
    assert kinds == ["offered", "accepted", "completed"]


def test_no_answer_goes_to_the_next_best_agent_never_the_same_one(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    center.agent("alice", {"cards": 3}, "client:alice")
    sid = center.call(["2"])
    assert redirect_target(center.api.requests[0])[1]["agent"] == ["bob"]
    doc = center.twilio(f"/voice/agent-done?call={sid}&agent=bob",
                        {"CallSid": sid, "DialCallStatus": "no-answer"})
    assert doc.find("Enqueue").text == "cards"  # back on hold, nobody lost
    assert redirect_target(center.api.requests[1])[1]["agent"] == ["alice"]
    router = center.router()
    assert router.calls[sid].agent_id == "alice" and "bob" in router.calls[sid].excluded
    assert router.agents["bob"].state.value == "break"  # a silent agent leaves rotation
    stored = center.client.get(f"/calls/{sid}/decisions", headers=AGENT_AUTH).json["decisions"]
    assert [(d["kind"], d["agent_id"]) for d in stored] == [  # each decision stored once
        ("offered", "bob"), ("timed_out", "bob"), ("offered", "alice")]


def test_agent_rejects_through_the_api(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    center.agent("alice", {"cards": 3}, "client:alice")
    sid = center.call(["2"])
    offers = center.client.get("/agents/bob/offers", headers=AGENT_AUTH).json["offers"]
    assert offers[0]["call_id"] == sid and offers[0]["context"]["intent"] == "cards"
    assert offers[0]["context"]["caller"] == "+*********02"
    r = center.client.post(f"/agents/bob/offers/{sid}/reject", headers=AGENT_AUTH)
    assert r.status_code == 200
    assert redirect_target(center.api.requests[-1])[1]["agent"] == ["alice"]
    r = center.client.post(f"/agents/bob/offers/{sid}/accept", headers=AGENT_AUTH)
    assert r.status_code == 409 and "bob" in r.json["error"]
    # alice takes it through the API, talks, completes, wraps up, and is ready again
    assert center.client.post(f"/agents/alice/offers/{sid}/accept",
                              headers=AGENT_AUTH).status_code == 200
    assert center.router().agents["alice"].state.value == "busy"
    r = center.client.post(f"/agents/alice/calls/{sid}/complete", headers=AGENT_AUTH)
    assert r.status_code == 200 and center.router().agents["alice"].state.value == "wrap_up"
    r = center.client.post("/agents/alice/wrap-up/end", headers=AGENT_AUTH)
    assert r.status_code == 200 and center.router().agents["alice"].state.value == "available"
    stats = center.client.get("/queues", headers=AGENT_AUTH).json["queues"]["cards"]
    assert stats["answered"] == 1


def test_caller_who_hangs_up_in_queue_is_abandoned_and_counted(center):
    sid = center.call(["2"])  # nobody logged in: waits
    assert center.router().calls[sid].state.value == "waiting"
    center.twilio("/voice/step?turn=2&ev=queue", {"CallSid": sid, "QueueResult": "hangup"})
    stats = center.client.get("/queues", headers=AGENT_AUTH).json["queues"]["cards"]
    assert stats["abandoned"] == 1 and stats["waiting"] == 0
    assert center.store.get_session(sid).outcome == "abandoned_in_queue"


def test_waiting_callers_hear_an_estimate_and_a_long_wait_offers_a_callback(center):
    center.agent("carol", {"cards": 3}, "client:carol")
    first = center.call(["2"])  # carol takes the first call
    center.twilio(f"/voice/whisper?call={first}&agent=carol", {"CallSid": "CA" + "8" * 32})
    aisha = center.call(["2"], caller="+14155550103")
    wei = center.call(["2"], caller="+14155550104")
    routing = center.app.extensions["ivr.routing"]
    estimates = [routing.estimated_wait(c, center.now) for c in (aisha, wei)]
    assert 0 < estimates[0] < estimates[1]  # later in line, longer wait
    hold = center.twilio("/voice/wait?queue=cards", {"CallSid": aisha, "QueuePosition": "1"})
    say = hold.find("Say").text
    assert "You are next in line." in say and "Your expected wait is about" in say
    # route_cards offers a callback past 300 s of expected wait
    assert (hold.find("Gather") is not None) == (estimates[0] > 300)
    hold = center.twilio("/voice/wait?queue=cards", {"CallSid": wei, "QueuePosition": "2"})
    assert estimates[1] > 300 and hold.find("Gather").get("action") == "/voice/callback"
    assert "get a call back" in hold.find("Gather/Say").text


def test_callback_keeps_the_place_and_rings_back(center):
    sid = center.call(["2"], caller="+14155550103")
    doc = center.twilio("/voice/callback", {"CallSid": sid, "Digits": "1"})
    assert doc.find("Leave") is not None
    doc = center.twilio("/voice/step?turn=2&ev=queue", {"CallSid": sid, "QueueResult": "leave"})
    assert doc.find("Hangup") is not None
    center.twilio("/voice/status", {"CallSid": sid, "CallStatus": "completed"})
    assert center.router().calls[sid].state.value == "waiting"  # not abandoned
    center.agent("dave", {"cards": 4}, "client:dave")
    (req,) = center.api.requests
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
    assert req.form["To"] == "+14155550103" and req.form["From"] == "+14155550100"
    target, query = redirect_target(req)
    assert target == f"{PUBLIC}/voice/connect" and query["agent"] == ["dave"]
    assert req.form["StatusCallback"] == (f"{PUBLIC}/voice/status?callback_for={sid}"
                                          "&agent=dave")
    # The customer does not pick up: no fault of dave's, who stays available; the next
    # agent rings them again, and after three tries the call counts as abandoned.
    center.agent("erin", {"cards": 3}, "client:erin")
    center.agent("finn", {"cards": 3}, "client:finn")
    leg = {"CallSid": "CA" + "7" * 32, "CallStatus": "no-answer"}
    center.twilio(f"/voice/status?callback_for={sid}&agent=dave", leg)
    assert center.router().agents["dave"].state.value == "available"
    second = center.api.requests[-1]
    assert second.form["To"] == "+14155550103" and "agent=erin" in second.form["Url"]
    center.twilio(f"/voice/status?callback_for={sid}&agent=erin", leg)
    center.twilio(f"/voice/status?callback_for={sid}&agent=finn", leg)
    assert sid not in center.router().calls or \
        center.router().calls[sid].state.value == "abandoned"
    assert len(center.api.requests) == 3
    stats = center.client.get("/queues", headers=AGENT_AUTH).json["queues"]["cards"]
    assert stats["abandoned"] == 1


def test_relaxation_over_time_reaches_a_less_skilled_agent(center):
    center.agent("erin", {"cards": 1}, "client:erin")
    sid = center.call(["2"])
    router = center.router()
    assert router.calls[sid].state.value == "waiting"  # level 1 < required 2 (then 3 by policy)
    routing = center.app.extensions["ivr.routing"]
    center.now = OPEN + dt.timedelta(seconds=95)
    routing.run(routing.tick(center.now))
    assert center.router().calls[sid].agent_id == "erin"
    assert redirect_target(center.api.requests[-1])[1]["agent"] == ["erin"]
    decisions = center.client.get(f"/calls/{sid}/decisions", headers=AGENT_AUTH).json["decisions"]
    assert decisions[-1]["kind"] == "offered" and decisions[-1]["step"] == 2


def test_agent_api_needs_its_token_and_names_bad_fields(center):
    assert center.client.get("/agents").status_code == 401
    r = center.client.put("/agents/x", headers=AGENT_AUTH, json={"skils": {"cards": 2}})
    assert r.status_code == 422 and r.json["field"] == "skils"
    assert "unknown field" in r.json["error"]
    r = center.client.put("/agents/x", headers=AGENT_AUTH, json={"skills": {"cards": 9}})
    assert r.status_code == 422 and r.json["field"] == "skills.cards"
    r = center.client.post("/agents/x/state", headers=AGENT_AUTH, json={"state": "dancing"})
    assert r.status_code == 422 and r.json["field"] == "state"


def test_route_explain_reads_the_decisions_from_the_store(tmp_path, capsys):
    from ivr.cli import main

    with FakeTwilioAPI() as api:
        center = Center(api, data_dir=tmp_path)
        center.agent("ben", {"cards": 5}, "client:ben")  # joins the roster's ben, now available
        center.agent("chloe", {"cards": 4}, "client:chloe")
        sid = center.call(["2"])
    assert main(["route", "explain", sid, "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"call {sid} [cards] offered to agent ben (enqueue)" in out
    assert "chosen    ben: score 5" in out and "runner-up chloe: score 4" in out
    assert main(["route", "explain", "CA" + "0" * 32, "--data-dir", str(tmp_path)]) == 1


def test_restart_keeps_waiting_calls_and_agent_states_and_stats_reset_daily(tmp_path):
    with FakeTwilioAPI() as api:
        first = Center(api, data_dir=tmp_path)
        first.agent("ben", {"cards": 5}, "client:ben")
        busy = first.call(["2"])  # ben reserved
        waiting = first.call(["2"], caller="+14155550103")
        second = Center(api, data_dir=tmp_path)  # a new server process on the same store
        router = second.router()
        assert router.calls[busy].agent_id == "ben" and router.agents["ben"].state.value == \
            "reserved"
        assert router.calls[waiting].state.value == "waiting"
        routing = second.app.extensions["ivr.routing"]
        routing.tick(second.now)
        assert second.router().stats("cards", second.now.timestamp()).as_dict()["offered"] == 2
        second.now = second.now + dt.timedelta(days=1)
        routing.tick(second.now)  # a new day in New York: today's figures start again
        assert second.router().stats("cards", second.now.timestamp()).as_dict()["offered"] == 0
        assert second.router().calls[waiting].state.value == "waiting"
