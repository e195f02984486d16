"""The agent desktop's API: presence, offers with context, transfers, wrap-up, and that
an agent can act only on their own."""

from __future__ import annotations

import re

import pytest

from ivr.console import FlaskTransport, TwimlCaller
from tests.conftest import KNOWN_CALLER, call_sid
from tests.test_auth import PASSWORD, make_app, sign_in

TOKEN = "t"
SECRET = "an-api-key-secret-of-thirty-two-bytes"


class Desk:
    """A signed-in agent's browser: JSON requests with the CSRF header."""

    def __init__(self, app, name):
        self.client = app.test_client()
        sign_in(self.client, name)
        page = self.client.get("/agent").get_data(as_text=True)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post(self, path, body=None):
        return self.client.post(path, json=body or {}, headers={
            "X-CSRF-Token": self.csrf, "Accept": "application/json"})

    def state(self):
        return self.client.get("/agent/state", headers={"Accept": "application/json"}).get_json()


@pytest.fixture
def floor():
    app = make_app()
    users = app.extensions["ivr.users"]
    for name in ("ana", "ben"):
        users.add(name, "agent", PASSWORD)
    users.add("sam", "supervisor", PASSWORD)
    return app


def ring(app, words="I was charged twice for the same coffee", caller=KNOWN_CALLER,
         after_queue=None, keys=()):
    """A signed call through the webhooks; ``after_queue`` continues past the agent, into
    the survey, answered with ``keys``."""
    script = [words, *keys]
    transport = FlaskTransport(app, TOKEN)
    result = TwimlCaller(transport, lambda prompts: script.pop(0) if script else None,
                         after_queue=after_queue).call(call_sid(), caller, "+14155550100")
    return result.call_sid


def test_offer_pops_with_context_and_only_on_the_right_desk(floor):
    ana, ben = Desk(floor, "ana"), Desk(floor, "ben")
    assert ana.post("/agent/presence", {"state": "available"}).status_code == 200
    assert ben.post("/agent/presence", {"state": "available"}).status_code == 200
    sid = ring(floor)
    view = ana.state()
    (offer,) = view["calls"]
    assert offer["id"] == sid and offer["state"] == "reserved" and offer["queue"] == "billing"
    ctx = offer["context"]
    assert ctx["intent"] == "billing" and ctx["nlu"]["text"].startswith("I was charged twice")
    assert ctx["customer"]["first_name"] == "James"
    assert ctx["caller"] != KNOWN_CALLER and ctx["caller"].endswith("02")  # masked
    assert offer["expires_at"] == pytest.approx(offer["offered_at"] + 15)
    assert "offered to agent ana" in offer["explain"][0]
    assert offer["path"][0] == "start" or len(offer["path"]) > 2
    assert ben.state()["calls"] == []
    # Ben cannot take, refuse or end Ana's call.
    for action in ("accept", "reject", "complete", "hold"):
        response = ben.post(f"/agent/calls/{sid}/{action}")
        assert response.status_code == 409, action
    assert ana.state()["calls"][0]["state"] == "reserved"


def test_accept_hold_transfer_to_a_skill_then_disposition(floor):
    ana, ben = Desk(floor, "ana"), Desk(floor, "ben")
    ana.post("/agent/presence", {"state": "available"})
    ben.post("/agent/presence", {"state": "available"})
    sid = ring(floor, "my card was stolen")  # the IVR hears cards/fraud; Ana gets it below
    owner = ana if ana.state()["calls"] else ben
    other = ben if owner is ana else ana
    assert owner.post(f"/agent/calls/{sid}/accept").status_code == 200
    assert owner.post(f"/agent/calls/{sid}/hold").status_code == 200
    assert owner.state()["calls"][0]["on_hold"] is True
    assert owner.post(f"/agent/calls/{sid}/hold").status_code == 409
    assert owner.post(f"/agent/calls/{sid}/resume").status_code == 200
    bad = owner.post(f"/agent/calls/{sid}/transfer", {"queue": "cards", "reason": "bored"})
    assert bad.status_code == 400 and "reason: one of misrouted" in bad.get_json()["error"]
    target = "ben" if other is ben else "ana"
    moved = owner.post(f"/agent/calls/{sid}/transfer",
                       {"agent": target, "reason": "misrouted", "queue": "cards"})
    assert moved.status_code == 200, moved.get_json()
    mine = owner.state()
    assert mine["calls"] == [] and [w["id"] for w in mine["wrap_up"]] == [sid]
    (offer,) = other.state()["calls"]
    assert offer["state"] == "reserved"
    (t,) = offer["context"]["transfers"]
    assert t["reason"] == "misrouted" and t["by"] != target and t["original_intent"]
    assert other.post(f"/agent/calls/{sid}/accept").status_code == 200
    assert other.post(f"/agent/calls/{sid}/complete").status_code == 200
    wrap = other.state()["wrap_up"][0]
    assert "cards" in wrap["intents"]
    nope = other.post(f"/agent/calls/{sid}/wrap-up", {"disposition": "resolved",
                                                      "corrected_intent": "not-an-intent"})
    assert nope.status_code == 400
    done = other.post(f"/agent/calls/{sid}/wrap-up", {
        "disposition": "resolved", "corrected_intent": "cards", "notes": "card blocked"})
    assert done.status_code == 200
    assert other.state()["agent"]["state"] == "available"
    kinds = [(e.kind, e.agent_id) for e in floor.extensions["ivr.floor"].events(call_id=sid)]
    assert kinds[-2:] == [("transfer", "ana" if owner is ana else "ben"),
                          ("disposition", target)]


def test_break_needs_a_reason_from_the_policy(floor):
    ana = Desk(floor, "ana")
    assert ana.post("/agent/presence", {"state": "break"}).status_code == 400
    assert ana.post("/agent/presence", {"state": "break", "reason": "lunch"}).status_code == 200
    view = ana.state()
    assert view["agent"]["state"] == "break" and view["break_reason"] == "lunch"


def test_desktop_apis_need_an_agent_and_the_csrf_token(floor):
    sam = floor.test_client()
    sign_in(sam, "sam")
    assert sam.get("/agent/state", headers={"Accept": "application/json"}).status_code == 403
    ana = Desk(floor, "ana")
    no_token = ana.client.post("/agent/presence", json={"state": "available"},
                               headers={"Accept": "application/json"})
    assert no_token.status_code == 403 and "CSRF" in no_token.get_json()["error"]
    anonymous = floor.test_client().post("/agent/presence", json={"state": "available"},
                                         headers={"Accept": "application/json"})
    assert anonymous.status_code == 401


def test_softphone_token_is_minted_by_the_twilio_library():
    import jwt as _jwt  # PyJWT comes with twilio

    app = make_app(account_sid="AC" + "1" * 32, twilio_api_key="SK" + "2" * 32,
                   twilio_api_secret=SECRET, twiml_app_sid="AP" + "3" * 32)
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    ana = Desk(app, "ana")
    body = ana.client.get("/agent/token", headers={"Accept": "application/json"}).get_json()
    claims = _jwt.decode(body["token"], SECRET, algorithms=["HS256"])
    assert claims["grants"]["identity"] == "ana"
    assert claims["grants"]["voice"]["outgoing"]["application_sid"] == "AP" + "3" * 32
    assert claims["grants"]["voice"]["incoming"]["allow"] is True
    assert app.extensions["ivr.routing"].state.contact("ana") == "client:ana"
    off = Desk(make_app_with_agent(), "ana")
    response = off.client.get("/agent/token", headers={"Accept": "application/json"})
    assert response.status_code == 404 and "TWILIO_API_KEY" in response.get_json()["error"]


def make_app_with_agent():
    app = make_app()
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    return app


def test_warm_transfer_waits_for_the_named_agent_then_moves_the_call(floor):
    ana, ben = Desk(floor, "ana"), Desk(floor, "ben")
    ana.post("/agent/presence", {"state": "available"})
    sid = ring(floor)  # billing: Ana
    ben.post("/agent/presence", {"state": "available"})
    assert ana.post(f"/agent/calls/{sid}/accept").status_code == 200
    warm = {"mode": "warm", "agent": "ben", "reason": "needs_other_skill", "queue": "cards"}
    no_target = ana.post(f"/agent/calls/{sid}/transfer", {**warm, "agent": None})
    assert no_target.status_code == 400 and "named agent" in no_target.get_json()["error"]
    assert ana.post(f"/agent/calls/{sid}/transfer", warm).status_code == 200
    assert ana.state()["calls"][0]["consult"]["to_agent"] == "ben"  # Ana keeps the caller
    (consult,) = ben.state()["consults"]
    assert consult["call_id"] == sid and consult["context"]["customer"]["first_name"] == "James"
    assert ana.post(f"/agent/consults/{sid}/accept").status_code == 409  # not Ana's to take
    assert ben.post(f"/agent/consults/{sid}/decline").status_code == 200
    mine = ana.state()["calls"][0]
    assert mine["state"] == "connected" and mine["declined"] and mine["consult"] is None
    assert ana.post(f"/agent/calls/{sid}/transfer", warm).status_code == 200
    assert ben.post(f"/agent/consults/{sid}/accept").status_code == 200
    (taken,) = ben.state()["calls"]
    assert taken["state"] == "connected" and taken["context"]["transfers"][0]["mode"] == "warm"
    assert [w["id"] for w in ana.state()["wrap_up"]] == [sid]
    assert ben.state()["consults"] == []


def test_router_offers_a_named_transfer_only_to_an_available_agent():
    from routing import Agent, Call, InvalidTransitionError, Router, RoutingPolicy

    router = Router(RoutingPolicy.default())
    router.add_agent(Agent(id="a", skills={"general": 2}), 0.0)
    router.add_agent(Agent(id="b", skills={"general": 5}), 0.0)
    router.set_agent_state("a", "available", 1.0)
    with pytest.raises(InvalidTransitionError, match="agent b: is offline"):
        router.offer_to(Call(id="c1", queue="general"), "b", 2.0)
    router.set_agent_state("b", "available", 2.0)
    d = router.offer_to(Call(id="c1", queue="general"), "a", 3.0)  # not the best fit: named
    assert (d.kind.value, d.agent_id, d.trigger) == ("offered", "a", "transfer")
    assert router.calls["c1"].state.value == "reserved" and router.agents["a"].state.value == "reserved"
    router.check_invariants()
    router.reject("c1", "a", 4.0)  # then it is routed as usual, to the best other agent
    assert router.calls["c1"].agent_id == "b"
    router.check_invariants()
