"""The webhooks through the Flask test client: signatures, whole calls driven only by
the TwiML the app returns, retries, hostile input, the safe path, hot reload."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import CLOSED, FLOWS, KNOWN_CALLER, OPEN, Phone, call_sid

from ivr.console import FlaskTransport, sign
from ivr.live.calls_store import MemoryStore, SQLiteStore
from ivr.web import create_app
from ivr.web.settings import Settings

TOKEN = "12345678901234567890123456789012"


def app_with(tmp_path: Path | None = None, **settings):
    defaults = dict(flows_dir=FLOWS, store="memory", auth_token=TOKEN, reload_interval_s=0)
    defaults.update(settings)
    return create_app(Settings(**defaults), clock=lambda: OPEN)


def signed_post(client, path, params, token=TOKEN, base="http://localhost", headers=None):
    sig = sign(token, base + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": sig, **(headers or {})})


# ---------------------------------------------------------------- signatures


def test_unsigned_and_wrongly_signed_requests_get_403_and_change_nothing():
    store = MemoryStore()
    app = create_app(Settings(flows_dir=FLOWS, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), store=store, clock=lambda: OPEN)
    client = app.test_client()
    sid = call_sid()
    params = {"CallSid": sid, "From": KNOWN_CALLER, "To": "+14155550100"}
    assert client.post("/voice/incoming", data=params).status_code == 403
    assert signed_post(client, "/voice/incoming", params, token="0" * 32).status_code == 403
    sig = sign(TOKEN, "http://localhost/voice/incoming", params)
    r = client.post("/voice/incoming", data={**params, "From": "+19995550000"},
                    headers={"X-Twilio-Signature": sig})
    assert r.status_code == 403  # a parameter changed after signing
    assert store.get_session(sid) is None
    r = signed_post(client, "/voice/incoming", params)
    assert r.status_code == 200 and store.get_session(sid) is not None


def test_signature_is_checked_against_the_configured_public_url():
    app = app_with(public_url="https://ivr.example.com")
    client = app.test_client()
    params = {"CallSid": call_sid(), "From": KNOWN_CALLER, "To": "+14155550100"}
    assert signed_post(client, "/voice/incoming", params).status_code == 403
    r = signed_post(client, "/voice/incoming", params, base="https://ivr.example.com")
    assert r.status_code == 200


def test_no_token_means_everything_is_rejected_and_the_server_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="ivr.web"):
        app = app_with(auth_token=None)
    assert "TWILIO_AUTH_TOKEN is not set" in caplog.text
    params = {"CallSid": call_sid()}
    assert signed_post(app.test_client(), "/voice/incoming", params).status_code == 403


def test_turning_validation_off_is_announced(caplog):
    with caplog.at_level(logging.WARNING, logger="ivr.web"):
        app = app_with(validate_signatures=False)
    assert "TWILIO SIGNATURE VALIDATION IS OFF" in caplog.text
    r = app.test_client().post("/voice/incoming", data={"CallSid": call_sid()})
    assert r.status_code == 200


# ---------------------------------------------------------------- whole calls


def test_whole_calls_follow_twiml_and_validate_against_the_schema(twiml_schema):
    phone = Phone()
    scripts = [
        (["1", "23456789", "11021990", "4"], None),
        (["I was charged twice for the same coffee"], KNOWN_CALLER),
        ([None, None, None], KNOWN_CALLER),
        (["0"], KNOWN_CALLER),
    ]
    for answers, caller in scripts:
        result, session = phone.call(answers, caller=caller or "+15005550006")
        assert result.ended_by == "enqueue", result
        assert session.status == "queued"
        for doc in result.documents:
            errors = list(twiml_schema.iter_errors(doc))
            assert not errors, (doc, errors[0])
    phone.now = CLOSED
    result, session = phone.call(["1", "2", "this is my message"])
    assert result.ended_by == "hangup" and session.outcome == "voicemail"
    for doc in result.documents:
        assert not list(twiml_schema.iter_errors(doc)), doc


def test_route_request_is_stored_with_its_context(phone):
    result, session = phone.call(["2"], caller=KNOWN_CALLER)
    route = phone.store.route_request(result.call_sid)
    assert route["queue"] == "cards" and route["skills"] == {"cards": 2}
    assert route["context"]["customer"]["first_name"] == "James"
    kinds = [e["decision"] for e in phone.store.events(result.call_sid)]
    assert kinds[-1] == "route to queue cards"


def test_survey_after_the_agent_leg_then_status_callback(phone):
    answers = ["2", "5", "1"]
    result, session = phone.call(answers, caller=KNOWN_CALLER, after_queue="bridged")
    assert result.ended_by == "hangup"
    assert session.data["survey"] == {"csat": 5, "ces": 1}
    assert session.status == "ended"


def test_enqueue_wait_url_announces_position(phone):
    client = phone.app.test_client()
    r = signed_post(client, "/voice/wait?queue=billing", {"QueuePosition": "3",
                                                           "CallSid": call_sid()},
                    token=phone.token)
    root = ET.fromstring(r.data)
    assert root[0].tag == "Say" and "number 3 in line" in root[0].text
    assert root[1].tag == "Play"


# ---------------------------------------------------------------- retries


def test_a_repeated_webhook_does_not_advance_the_call_twice(phone):
    client = phone.app.test_client()
    sid = call_sid()
    base = {"CallSid": sid, "From": KNOWN_CALLER, "To": "+14155550100"}
    first = signed_post(client, "/voice/incoming", base, token=phone.token)
    again = signed_post(client, "/voice/incoming", base, token=phone.token)
    assert first.data == again.data
    step = {**base, "Digits": "9"}  # not a menu key: no match, attempt 1
    r1 = signed_post(client, "/voice/step?turn=1&ev=gather", step, token=phone.token)
    r2 = signed_post(client, "/voice/step?turn=1&ev=gather", step, token=phone.token)
    assert r1.data == r2.data
    session = phone.store.get_session(sid)
    assert session.turn == 1 and session.attempts == 1
    ahead = signed_post(client, "/voice/step?turn=9&ev=gather", step, token=phone.token)
    assert ahead.data == r1.data and phone.store.get_session(sid).turn == 1


# ---------------------------------------------------------------- hostile input


@pytest.mark.parametrize("path,params,status,words", [
    ("/voice/incoming", {}, 400, "missing form parameter CallSid"),
    ("/voice/incoming", {"CallSid": "CA123"}, 400, "CallSid must look like CA"),
    ("/voice/step?turn=1&ev=gather", {"CallSid": "CA" + "a" * 32, "Digits": "12ab"}, 400,
     "Digits must be keypad keys"),
    ("/voice/step?turn=x&ev=gather", {"CallSid": "CA" + "a" * 32}, 400, "turn must be"),
    ("/voice/step?turn=1&ev=explode", {"CallSid": "CA" + "a" * 32}, 400, "ev must be one of"),
    ("/voice/step?turn=1&ev=gather", {"CallSid": "CA" + "a" * 32, "From": "x" * 3000}, 400,
     "too long"),
])
def test_malformed_requests_get_a_clear_4xx(path, params, status, words):
    client = app_with(validate_signatures=False).test_client()
    r = client.post(path, data=params)
    assert r.status_code == status and words in r.get_data(as_text=True)


def test_huge_body_wrong_content_type_and_get_are_4xx():
    client = app_with(validate_signatures=False).test_client()
    r = client.post("/voice/step?turn=1&ev=gather",
                    data={"CallSid": "CA" + "a" * 32, "SpeechResult": "blah " * 20000})
    assert r.status_code == 413
    r = client.post("/voice/incoming", json={"CallSid": "CA" + "a" * 32})
    assert r.status_code == 400
    assert client.get("/voice/incoming").status_code == 405


def test_unknown_call_gets_the_safe_path_to_a_human():
    client = app_with(validate_signatures=False).test_client()
    r = client.post("/voice/step?turn=4&ev=gather", data={"CallSid": call_sid(), "Digits": "1"})
    root = ET.fromstring(r.data)
    assert r.status_code == 200
    assert root[0].tag == "Say" and root[0].text.startswith("We're sorry")
    assert root[1].tag == "Enqueue" and root[1].text == "general"


def test_long_speech_is_truncated_not_a_crash(phone):
    client = phone.app.test_client()
    sid = call_sid()
    base = {"CallSid": sid, "From": KNOWN_CALLER, "To": "+14155550100"}
    signed_post(client, "/voice/incoming", base, token=phone.token)
    r = signed_post(client, "/voice/step?turn=1&ev=gather",
                    {**base, "SpeechResult": "my card " * 2000}, token=phone.token)
    assert r.status_code == 200
    assert len(phone.store.get_session(sid).data["nlu"]["text"]) == 500


def test_a_failure_inside_a_step_takes_the_safe_path(tmp_path, caplog):
    """A real fault: the flow's SQLite customer table disappears mid-call."""
    db = tmp_path / "crm.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (phone TEXT, name TEXT)")
    (tmp_path / "f.yaml").write_text("""
start: menu
sources: {crm: {sqlite: crm.sqlite3, table: customers}}
nodes:
  menu:
    type: ask
    prompt: Press 1.
    intents: {one: {keys: ["1"], next: find}}
    no_match: find
  find: {type: lookup, source: crm, found: bye, not_found: bye}
  bye: {type: hangup}
""")
    store = MemoryStore()
    app = create_app(Settings(flows_dir=tmp_path, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), store=store, clock=lambda: OPEN)
    client = app.test_client()
    sid = call_sid()
    signed_post(client, "/voice/incoming", {"CallSid": sid, "From": KNOWN_CALLER})
    db.unlink()
    with caplog.at_level(logging.ERROR, logger="ivr.voice"):
        r = signed_post(client, "/voice/step?turn=1&ev=gather", {"CallSid": sid, "Digits": "1"})
    root = ET.fromstring(r.data)
    assert r.status_code == 200 and root[1].tag == "Enqueue" and root[1].text == "general"
    assert any(rec.call_id == sid for rec in caplog.records if hasattr(rec, "call_id"))
    assert store.get_session(sid).outcome == "error"


# ---------------------------------------------------------------- reload, health, admin


def test_hot_reload_keeps_the_last_valid_flow(tmp_path, caplog):
    shutil.copy(FLOWS / "quickstart.yaml", tmp_path / "quickstart.yaml")
    app = create_app(Settings(flows_dir=tmp_path, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), clock=lambda: OPEN)
    registry = app.extensions["ivr.flows"]
    v1 = registry.get("quickstart").version
    path = tmp_path / "quickstart.yaml"
    path.write_text(path.read_text().replace("Thanks for calling.", "Hello there."))
    assert registry.refresh(now=10.0) is True
    assert registry.get("quickstart").version != v1
    assert registry.get("quickstart", v1).version == v1  # calls on v1 keep it
    path.write_text(path.read_text().replace("next: to_sales", "next: to_salez"))
    with caplog.at_level(logging.ERROR, logger="ivr.flows.registry"):
        assert registry.refresh(now=20.0) is False
    assert "unknown node 'to_salez'" in caplog.records[-1].problem
    result = FlaskTransport(app, TOKEN).post("/voice/incoming", {"CallSid": call_sid()})
    assert "Hello there." in result[1]


def test_hot_reload_refuses_a_route_to_a_queue_the_policy_lacks(tmp_path, caplog):
    for name in ("quickstart.yaml", "routing.yaml"):
        shutil.copy(FLOWS / name, tmp_path / name)
    app = create_app(Settings(flows_dir=tmp_path, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), clock=lambda: OPEN)
    registry = app.extensions["ivr.flows"]
    path = tmp_path / "quickstart.yaml"
    path.write_text(path.read_text().replace("queue: sales", "queue: presales"))
    with caplog.at_level(logging.ERROR, logger="ivr.flows.registry"):
        assert registry.refresh(now=10.0) is False
    assert registry.get("quickstart").nodes["to_sales"].queue == "sales"
    assert "queue: 'presales' is not a queue of" in caplog.records[-1].problem


def test_server_refuses_to_start_on_an_invalid_flow(tmp_path):
    (tmp_path / "bad.yaml").write_text("start: x\nnodes:\n  x: {type: say, text: hi, next: y}\n")
    from ivr.errors import FlowError

    with pytest.raises(FlowError) as info:
        create_app(Settings(flows_dir=tmp_path, store="memory", auth_token=TOKEN))
    assert info.value.problems == [f"{tmp_path / 'bad.yaml'}: node 'x': next: unknown node 'y'"]


def test_healthz_and_admin_auth(tmp_path):
    app = app_with(store="sqlite", data_dir=tmp_path, admin_token="s3cret")
    client = app.test_client()
    health = client.get("/healthz").json
    assert (health["status"], health["flows"]) == ("ok", ["bank", "quickstart", "verify_account"])
    assert client.get("/admin/flows").status_code == 401
    assert client.get("/admin/flows", headers={"Authorization": "Bearer nope"}).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    flows = client.get("/admin/flows", headers=auth).json
    assert {f["id"] for f in flows["flows"]} == {"bank", "quickstart", "verify_account"}
    sid = call_sid()
    signed_post(client, "/voice/incoming", {"CallSid": sid, "From": KNOWN_CALLER})
    call = client.get(f"/admin/calls/{sid}", headers=auth).json
    assert call["session"]["data"]["caller"] == "+*********02"  # redacted
    assert app_with().test_client().get("/admin/flows").status_code == 503


def test_sqlite_store_survives_a_new_app_mid_call(tmp_path):
    """A restart mid-call: a new app on the same data folder carries the call on."""
    settings = dict(flows_dir=FLOWS, store="sqlite", data_dir=tmp_path, auth_token=TOKEN,
                    reload_interval_s=0)
    first = create_app(Settings(**settings), clock=lambda: OPEN).test_client()
    sid = call_sid()
    signed_post(first, "/voice/incoming", {"CallSid": sid, "From": "+15005550006"})
    signed_post(first, "/voice/step?turn=1&ev=gather", {"CallSid": sid, "Digits": "1"})
    second = create_app(Settings(**settings), clock=lambda: OPEN).test_client()
    r = signed_post(second, "/voice/step?turn=2&ev=gather", {"CallSid": sid, "Digits": "23456789"})
    assert "date of birth" in r.get_data(as_text=True)
    store = SQLiteStore(tmp_path / "ivr.sqlite3")
    assert store.get_session(sid).data["account_number"] == "23456789"


# ---------------------------------------------------------------- hostile input, at random

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FUZZ_APP = None


def _fuzz_client():
    global _FUZZ_APP
    if _FUZZ_APP is None:
        _FUZZ_APP = app_with(validate_signatures=False)
    return _FUZZ_APP.test_client()


form_values = st.one_of(st.text(max_size=40), st.text("0123456789*#", max_size=8),
                        st.sampled_from(["CA" + "b" * 32, "", "bridged", "completed", "0.5"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/voice/incoming", "/voice/step", "/voice/wait", "/voice/status"]),
       query=st.dictionaries(st.sampled_from(["turn", "ev", "queue"]),
                             st.one_of(st.sampled_from(["0", "1", "2", "gather", "noinput",
                                                        "record", "dial", "queue"]),
                                       st.text(max_size=10)), max_size=3),
       form=st.dictionaries(st.sampled_from(["CallSid", "From", "To", "Digits", "SpeechResult",
                                             "Confidence", "QueueResult", "DialCallStatus",
                                             "RecordingUrl", "RecordingDuration", "CallStatus",
                                             "QueuePosition"]), form_values, max_size=8))
def test_random_webhook_parameters_never_cause_a_500(path, query, form):
    r = _fuzz_client().post(path, query_string=query, data=form)
    assert r.status_code in (200, 204, 400), (r.status_code, r.data[:300])
    if r.status_code == 200:
        ET.fromstring(r.data)  # always a well-formed TwiML document


def test_a_call_whose_flow_is_gone_still_gets_the_safe_path():
    store = MemoryStore()
    app = create_app(Settings(flows_dir=FLOWS, store="memory", auth_token=TOKEN,
                              reload_interval_s=0), store=store, clock=lambda: OPEN)
    sid = call_sid()
    from ivr.engine import Session

    orphan = Session(call_id=sid, flow_id="deleted_flow", flow_version="0" * 16, node="menu",
                     started_at=OPEN, updated_at=OPEN, data={"caller": KNOWN_CALLER})
    with store.transaction(sid) as rec:
        rec.save(orphan, "", [])
    r = signed_post(app.test_client(), "/voice/step?turn=1&ev=gather",
                    {"CallSid": sid, "Digits": "1"})
    root = ET.fromstring(r.data)
    assert root[0].text.startswith("We're sorry") and root[1].text == "general"
    assert store.get_session(sid).outcome == "error"
    assert store.route_request(sid)["reason"].startswith("error: exception: LookupError")
