"""Hostile input and bad days (issue 10): every malformed request is a 4xx naming what is
wrong, never a 500 or a dropped call; phone numbers stay masked; trust is not assumed."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest
from conftest import FLOWS, KNOWN_CALLER, OPEN, call_sid
from fake_twilio import FakeTwilioAPI
from test_live_routing import ADMIN_AUTH, AGENT_AUTH, PUBLIC, TOKEN, Center, redirect_target

from ivr.console import sign
from ivr.errors import IVRError
from ivr.flows.registry import FlowRegistry
from ivr.logs import JsonFormatter, redact_phone
from ivr.web import create_app
from ivr.web.settings import Settings, check_tokens


@pytest.fixture
def center():
    with FakeTwilioAPI() as api:
        yield Center(api)


def signed(client, path, params, base="http://localhost", token=TOKEN, headers=None):
    sig = sign(token, base + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})


# ---------------------------------------------------------------- 8: API bodies


def test_every_number_and_name_of_the_agent_body_is_finite_and_ranged(center):
    for value in ("NaN", "Infinity", "-Infinity", "1e308", "-1", '"10"'):
        r = center.client.put("/agents/zoe", headers=AGENT_AUTH, data=(
            '{"skills": {"cards": 3}, "wrap_up_seconds": %s}' % value),
            content_type="application/json")
        assert r.status_code == 422 and r.json["field"] == "wrap_up_seconds", r.json
    assert "zoe" not in center.router().agents
    json.loads(center.client.get("/queues", headers=AGENT_AUTH).data)  # no NaN/Infinity
    for body, field in [({"capacity": 1e308}, "capacity"), ({"capacity": 0}, "capacity"),
                        ({"skills": {"cards": 2.5}}, "skills.cards"),
                        ({"languages": ["en"] * 50}, "languages"), ({"name": "x" * 500}, "name")]:
        r = center.client.put("/agents/zoe", headers=AGENT_AUTH, json=body)
        assert r.status_code == 422 and r.json["field"] == field, r.json


# ---------------------------------------------------------------- 9: one error policy


@pytest.mark.parametrize("path, params", [
    ("/voice/callback", {"Digits": "1"}),
    ("/voice/agent-done?call=CA" + "1" * 32 + "&agent=bob", {"DialCallStatus": "completed"}),
    ("/voice/wait?queue=cards", {"QueuePosition": "3"}),
    ("/voice/wait?queue=cards", {"CallSid": "CA123", "QueuePosition": "3"}),
    ("/voice/connect?call=nope&agent=bob", {"CallSid": "CA" + "1" * 32}),
    ("/voice/whisper?call=CA" + "1" * 32, {"CallSid": "CA" + "2" * 32}),
    ("/voice/status?callback_for=x", {"CallSid": "CA" + "1" * 32, "CallStatus": "failed"}),
])
def test_malformed_signed_requests_are_400_on_every_voice_route(center, path, params):
    r = signed(center.client, path, params, base=PUBLIC)
    assert r.status_code == 400 and r.data.startswith(b"Bad Request:"), r.data


# ---------------------------------------------------------------- 10: input hardening


def test_unicode_digits_a_newline_in_callsid_and_deep_json_are_4xx(center):
    sid = center.call(["2"])
    r = signed(center.client, "/voice/wait?queue=cards",
               {"CallSid": sid, "QueuePosition": "\u00b2"}, base=PUBLIC)
    assert r.status_code == 400 and b"QueuePosition" in r.data
    r = signed(center.client, "/voice/step?turn=3&ev=record",
               {"CallSid": sid, "RecordingDuration": "\u00b2"}, base=PUBLIC)
    assert r.status_code == 400 and b"RecordingDuration" in r.data
    r = signed(center.client, "/voice/step?turn=%C2%B2&ev=gather", {"CallSid": sid}, base=PUBLIC)
    assert r.status_code == 400
    r = signed(center.client, "/voice/incoming", {"CallSid": sid + "\n"}, base=PUBLIC)
    assert r.status_code == 400 and b"CallSid" in r.data
    r = center.client.put("/agents/zoe", headers=AGENT_AUTH, data="[" * 60_000,
                          content_type="application/json")
    assert r.status_code == 422


# ---------------------------------------------------------------- 11: contacts


def test_only_an_admin_changes_where_an_agent_is_dialled(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    r = center.client.put("/agents/bob", headers=AGENT_AUTH, json={"contact": "+19005550100"})
    assert r.status_code == 403 and "admin" in r.json["error"]
    assert center.app.extensions["ivr.routing"].state.contact("bob") == "client:bob"
    for bad in ("call me maybe", "sip:", "+1 900", "tel:+14155550100", "client:a b"):
        r = center.client.put("/agents/bob", headers=ADMIN_AUTH, json={"contact": bad})
        assert r.status_code == 422 and r.json["field"] == "contact", bad
    r = center.client.put("/agents/bob", headers=ADMIN_AUTH, json={"contact": "+14155550188"})
    assert r.status_code == 200
    assert center.app.extensions["ivr.routing"].state.contact("bob") == "+14155550188"
    r = center.client.put("/agents/bob", headers=AGENT_AUTH, json={"skills": {"cards": 4}})
    assert r.status_code == 200  # everything else stays open to the agent token


# ---------------------------------------------------------------- 12: duplicate flow ids


def test_a_duplicate_flow_id_on_hot_reload_names_both_files_and_keeps_both(tmp_path):
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    registry = FlowRegistry.open(folder)
    before = {k: f.version for k, f in registry.flows.items()}
    bank = folder / "bank.yaml"
    bank.write_text(bank.read_text().replace("id: bank", "id: quickstart", 1))
    registry.refresh(1e9, min_interval=0)
    assert {k: f.version for k, f in registry.flows.items()} == before
    (problem,) = [p for p in registry.problems if "quickstart" in p]
    assert str(bank) in problem and str(folder / "quickstart.yaml") in problem


# ---------------------------------------------------------------- 13: hosts, URLs, keys


def test_a_spoofed_host_is_not_trusted_without_a_public_url():
    app = create_app(Settings(flows_dir=FLOWS, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), clock=lambda: OPEN)
    params = {"CallSid": call_sid(), "From": KNOWN_CALLER}
    r = signed(app.test_client(), "/voice/incoming", params, base="http://evil.example",
               headers={"Host": "evil.example"})
    assert r.status_code == 403 and b"IVR_PUBLIC_URL" in r.data
    assert signed(app.test_client(), "/voice/incoming", params).status_code == 200


def test_urls_with_encoded_agent_ids_are_signed_as_twilio_signs_them(center):
    for agent in ("jos\u00e9", "a b", "a+b", "50%", "o'neil", "a&b=c", "\u5f20", "~tilde",
                  "a;b", "a,b"):
        r = center.client.put(f"/agents/{quote(agent, safe='')}", headers=ADMIN_AUTH, json={
            "skills": {"cards": 5}, "languages": ["en"], "contact": "client:x"})
        assert r.status_code == 200, r.json
        center.client.post(f"/agents/{quote(agent, safe='')}/state", headers=AGENT_AUTH,
                           json={"state": "available"})
        sid = center.call(["2"])
        url = center.api.requests[-1].form["Url"]  # exactly what the app asked Twilio to fetch
        assert redirect_target(center.api.requests[-1])[1]["agent"] == [agent]
        r = signed(center.client, url.removeprefix(PUBLIC), {"CallSid": sid}, base=PUBLIC)
        assert r.status_code == 200 and b"<Dial" in r.data, agent


def test_repeated_form_keys_count_in_the_signature_and_are_refused():
    app = create_app(Settings(flows_dir=FLOWS, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), clock=lambda: OPEN)
    sid = call_sid()
    body = f"CallSid={sid}&From=%2B14155550102&From=%2B19005550100"
    one_value = sign(TOKEN, "http://localhost/voice/incoming", {"CallSid": sid,
                                                               "From": "+14155550102"})
    r = app.test_client().post("/voice/incoming", data=body, headers={
        "X-Twilio-Signature": one_value, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 403  # the second value was not signed
    from twilio.request_validator import RequestValidator
    from werkzeug.datastructures import MultiDict

    both = RequestValidator(TOKEN).compute_signature(
        "http://localhost/voice/incoming",
        MultiDict([("CallSid", sid), ("From", "+14155550102"), ("From", "+19005550100")]))
    r = app.test_client().post("/voice/incoming", data=body, headers={
        "X-Twilio-Signature": both, "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and b"From is given 2 times" in r.data


# ---------------------------------------------------------------- 14: token length


def test_short_tokens_refuse_to_start_and_say_how_to_make_one(tmp_path):
    with pytest.raises(IVRError, match="secrets.token_urlsafe"):
        check_tokens(Settings(agent_token="short"))
    check_tokens(Settings(agent_token="x" * 32, admin_token="y" * 40))
    from ivr.cli import main

    env_before = dict(__import__("os").environ)
    try:
        __import__("os").environ["IVR_ADMIN_TOKEN"] = "s3cret"
        assert main(["serve", "--flows", str(FLOWS), "--data-dir", str(tmp_path)]) != 0
    finally:
        __import__("os").environ.clear()
        __import__("os").environ.update(env_before)


# ---------------------------------------------------------------- 16, 17: masking


def test_agent_views_mask_every_phone_number_unless_an_admin_asks(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    offer = center.client.get("/agents/bob/offers", headers=AGENT_AUTH).json["offers"][0]
    text = json.dumps(offer)
    assert offer["call_id"] == sid
    assert "4155550102" not in text and "+*********02" in text
    assert offer["context"]["customer"]["phone"].endswith("02")
    clear = center.client.get("/agents/bob/offers?unmasked=1", headers=ADMIN_AUTH).json
    assert "+14155550102" in json.dumps(clear)
    masked = center.client.get("/agents/bob/offers?unmasked=1", headers=AGENT_AUTH).json
    assert "4155550102" not in json.dumps(masked)


@pytest.mark.parametrize("raw, masked", [
    ("x14155550130", "x*********30"), ("my_4155550132", "my_********32"),
    ("%2B14155550133", "%2B*********33"), ("4155550137abc", "********37abc"),
    ("call (415) 555-0100 now", "call (***) ***-**00 now"),
    ("at 2026-11-23T10:00:00-05:00", "at 2026-11-23T10:00:00-05:00"),
    ("/2010-04-01/Accounts/AC" + "1" * 32 + "/Calls.json",
     "/2010-04-01/Accounts/AC" + "1" * 32 + "/Calls.json"),
    ("CA" + "7" * 32, "CA" + "7" * 32), ("turn 12 of 3", "turn 12 of 3")])
def test_log_redaction_finds_numbers_wherever_they_stand_and_keeps_dates(raw, masked):
    assert redact_phone(raw) == masked
    record = logging.LogRecord("ivr", logging.INFO, "", 0, "seen %s", (raw,), None)
    assert json.loads(JsonFormatter().format(record))["msg"] == f"seen {masked}"


# ---------------------------------------------------------------- 1: early accept


ORDERS = [("accept", "connect", "whisper", "done"), ("connect", "accept", "whisper", "done"),
          ("connect", "whisper", "accept", "done"), ("accept", "complete", "connect", "whisper",
                                                     "done"),
          ("connect", "accept", "complete", "whisper", "done"),
          ("accept", "connect", "complete", "whisper", "done")]


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_every_order_of_accept_connect_whisper_complete_ends_bridged(center, order):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])
    dial = None
    for step in order:
        if step == "accept":
            r = center.client.post(f"/agents/bob/offers/{sid}/accept", headers=AGENT_AUTH)
            assert r.status_code == 200, r.json
        elif step == "complete":
            r = center.client.post(f"/agents/bob/calls/{sid}/complete", headers=AGENT_AUTH)
            assert r.status_code == 200, r.json
        elif step == "connect":
            doc = center.twilio(f"/voice/connect?call={sid}&agent=bob", {"CallSid": sid})
            dial = doc.find("Dial")
            assert dial is not None and dial.find("Client").text == "bob", ET.tostring(doc)
        elif step == "whisper":
            doc = center.twilio(dial.find("Client").get("url"), {"CallSid": "CA" + "9" * 32})
            assert doc.find("Hangup") is None and "cards call" in doc.find("Say").text
        else:
            doc = center.twilio(dial.get("action"), {"CallSid": sid,
                                                     "DialCallStatus": "completed"})
            assert doc.find("Enqueue") is None  # not sent back to the queue
    assert sid not in center.router().calls  # talked and completed, not waiting
    assert center.router().agents["bob"].state.value in ("wrap_up", "available")


# ---------------------------------------------------------------- 5, 6: safe path, store


def test_a_store_that_cannot_be_written_gives_503_health_and_the_safe_path(tmp_path):
    app = create_app(Settings(flows_dir=FLOWS, store="sqlite", data_dir=tmp_path,
                              auth_token=TOKEN, reload_interval_s=0, routing_tick_s=0,
                              store_busy_timeout_s=0.2), clock=lambda: OPEN)
    client = app.test_client()
    assert client.get("/healthz").status_code == 200
    blocker = sqlite3.connect(tmp_path / "ivr.sqlite3", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the store (or the disk is full)
    lost = call_sid()
    r = client.get("/healthz")
    assert r.status_code == 503 and r.json["status"] == "unavailable"
    r = signed(client, "/voice/incoming", {"CallSid": lost, "From": KNOWN_CALLER})
    doc = ET.fromstring(r.data)
    assert r.status_code == 200 and doc.find("Hangup") is None
    assert "sorry" in doc.find("Say").text and doc.find("Enqueue").text == "general"
    assert client.get("/agents").status_code in (503, 401)
    blocker.execute("ROLLBACK")
    blocker.close()
    # The store is back: no restart; the next call runs its flow, the waiting caller is
    # admitted to the router at the next hold-music loop.
    assert client.get("/healthz").status_code == 200
    r = signed(client, "/voice/incoming", {"CallSid": call_sid(), "From": KNOWN_CALLER})
    assert b"<Gather" in r.data
    r = signed(client, "/voice/wait?queue=general", {"CallSid": lost, "QueuePosition": "1"})
    assert r.status_code == 200
    call = app.extensions["ivr.routing"].state.read().calls[lost]
    assert call.queue == "general" and call.state.value == "waiting"
    health = client.get("/healthz").json
    assert health["counters"]["safe_path"] >= 1


def test_the_last_resort_handler_enqueues_with_an_apology_not_a_hangup(center, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("poisoned")

    sid = center.call(["2"])
    monkeypatch.setattr("ivr.web.voice._advance", broken)
    r = signed(center.client, "/voice/step?turn=2&ev=queue",
               {"CallSid": sid, "QueueResult": "error"}, base=PUBLIC)
    doc = ET.fromstring(r.data)
    assert doc.find("Hangup") is None and doc.find("Enqueue").text == "general"
    end = doc.find("Enqueue").get("action")
    r = signed(center.client, end, {"CallSid": sid, "QueueResult": "system-error"}, base=PUBLIC)
    assert ET.fromstring(r.data).find("Hangup") is not None  # no fallback number: counted


# ---------------------------------------------------------------- 15: trust levels


def test_whisper_and_screen_pop_say_caller_id_is_only_recognised(center):
    center.agent("bob", {"cards": 5}, "client:bob")
    sid = center.call(["2"])  # James, recognised by caller ID, not verified
    offer = center.client.get("/agents/bob/offers", headers=AGENT_AUTH).json["offers"][0]
    assert offer["context"]["trust"] == "recognised"
    doc = center.twilio(f"/voice/whisper?call={sid}&agent=bob", {"CallSid": "CA" + "9" * 32})
    text = doc.find("Say").text
    assert "Recognised by caller ID only, not verified." in text and "Identity verified" not in text


def test_the_safe_path_documents_are_valid_twiml(twiml_schema):
    from ivr.twiml import fallback_dial, safe_queue

    for doc in (safe_queue("Sorry.", "general"), fallback_dial("Sorry.", "+14155550100"),
                fallback_dial("Sorry.", None)):
        assert not list(twiml_schema.iter_errors(doc)), doc
