"""The REST outbox (issue 10, items 2-4): Twilio's API refusing, failing or answering
4xx/5xx never loses the caller nor penalises the agent; each intent is sent once."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fake_twilio import FakeTwilioAPI
from test_live_routing import AGENT_AUTH, Center, redirect_target

from ivr.counters import snapshot
from ivr.live.calls_store import SQLiteStore
from ivr.live.outbox import Intent, MemoryOutbox, SqlOutbox


def give_up(routing, limit_s: float = 10.0) -> None:
    """Run the sender until the current intent has been tried MAX_TRIES times."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        routing.deliver()
        if routing.outbox.counts().get("failed"):
            return
        time.sleep(0.1)
    raise AssertionError(f"not given up: {routing.outbox.counts()}")


@pytest.mark.parametrize("fault", ["refuse", 500, 404])
def test_a_failing_rest_api_keeps_the_caller_and_benches_nobody(fault):
    with FakeTwilioAPI(fault=fault) as api:
        center = Center(api)
        center.agent("bob", {"cards": 5}, "client:bob")
        before = snapshot().get("twilio_rest_given_up", 0)
        sid = center.call(["2"])  # the webhook answers although the API fails
        routing = center.app.extensions["ivr.routing"]
        give_up(routing)
        assert snapshot()["twilio_rest_given_up"] - before == 1  # after MAX_TRIES tries
        assert routing.outbox.counts()["failed"] == 1
        router = center.router()
        assert router.agents["bob"].presence.value == "available"  # not benched
        assert "bob" not in router.calls[sid].excluded
        # the call kept its place and was offered again; Twilio comes back: it is connected
        api.fault = None
        deadline = time.monotonic() + 5
        while not api.requests and time.monotonic() < deadline:
            routing.deliver()  # the retry comes due after its backoff
            time.sleep(0.1)
        assert redirect_target(api.requests[-1])[1] == {"call": [sid], "agent": ["bob"]}
        doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
        assert doc.find("Dial/Client").text == "bob"


def test_an_offer_timing_out_before_twilio_was_reached_does_not_bench_the_agent():
    with FakeTwilioAPI(fault="refuse") as api:
        center = Center(api)
        center.agent("bob", {"cards": 5}, "client:bob")
        sid = center.call(["2"])
        routing = center.app.extensions["ivr.routing"]
        center.now += dt.timedelta(seconds=20)  # past the 15 s reservation timeout
        routing.run(routing.tick(center.now))
        router = center.router()
        assert router.agents["bob"].presence.value == "available"
        assert router.calls[sid].agent_id == "bob"  # offered to him again, not excluded
        kinds = [d["kind"] for d in center.client.get(
            f"/calls/{sid}/decisions", headers=AGENT_AUTH).json["decisions"]]
        assert kinds[:2] == ["offered", "timed_out"] and kinds[-1] == "offered"


@pytest.mark.parametrize("make", [MemoryOutbox, "sqlite"])
def test_each_intent_is_recorded_once_and_claimed_by_one_sender(tmp_path, make):
    outbox = SqlOutbox(SQLiteStore(tmp_path / "s.sqlite3").connection) \
        if make == "sqlite" else make()
    intent = Intent("connect:CA1:bob:7", "connect", "CA1", "bob")
    outbox.add([intent, intent], 0.0)
    outbox.add([intent], 1.0)  # the same decision recorded again: still one intent
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: outbox.claim(10.0), range(8)))
    assert sum(len(c) for c in claims) == 1
    assert outbox.delivered("CA1", "bob") is False
    outbox.sent([intent.key])
    assert outbox.delivered("CA1", "bob") is True and outbox.claim(99.0) == []
    assert outbox.prune(-1.0) == 0 and outbox.prune(0.5) == 1  # kept a while, then forgotten
    assert outbox.counts() == {}


@pytest.mark.parametrize("make", [MemoryOutbox, "sqlite"])
def test_intents_recorded_together_are_claimed_in_their_order(tmp_path, make):
    """A hold before the consult it serves: the sender sends a call's requests in the
    order they were recorded, whatever order the store returns its claimed rows in."""
    outbox = SqlOutbox(SQLiteStore(tmp_path / "s.sqlite3").connection) \
        if make == "sqlite" else make()
    kinds = ["hold", "consult", "resume", "consult_end", "requeue", "hold", "resume"]
    now = time.time()
    outbox.add([Intent(f"{k}:CA1:bob:{n}", k, "CA1", "bob") for n, k in enumerate(kinds)], now)
    assert [i.kind for i in outbox.claim(now + 1)] == kinds
    assert outbox.delivered("CA1", "bob") is None  # (it answers for connect and ring only)
