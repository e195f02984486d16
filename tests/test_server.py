"""The real WSGI server (gunicorn, `ivr serve`) on loopback: signed requests from the
twilio library's RequestValidator, a restart mid-call, concurrent calls."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import KNOWN_CALLER, always_open_flows, call_sid

from ivr.console import HttpTransport, TwimlCaller
from ivr.loopback import LoopbackServer

pytestmark = pytest.mark.slow


def test_calls_through_gunicorn_survive_a_restart(tmp_path):
    token = secrets.token_hex(16)
    sid = call_sid()
    base = {"CallSid": sid, "From": "+15005550006", "To": "+14155550100"}
    flows = always_open_flows(tmp_path / "flows")
    with LoopbackServer(tmp_path, token, flows_dir=flows) as srv:
        http = HttpTransport(srv.url, token)
        status, body = http.post("/voice/incoming", base)
        assert status == 200 and "<Gather" in body
        status, body = http.post("/voice/step?turn=1&ev=gather", {**base, "Digits": "1"})
        assert status == 200
        forged = HttpTransport(srv.url, "not-the-token")
        assert forged.post("/voice/step?turn=2&ev=gather", {**base, "Digits": "2"})[0] == 403
    with LoopbackServer(tmp_path, token, flows_dir=flows) as srv:  # new process, same data
        http = HttpTransport(srv.url, token)
        status, body = http.post("/voice/step?turn=2&ev=gather", {**base, "Digits": "23456789"})
        assert status == 200 and "date of birth" in body
        # the same request again (Twilio retry) gets the same answer and changes nothing
        assert http.post("/voice/step?turn=2&ev=gather", {**base, "Digits": "23456789"}) == (
            200, body)


def test_concurrent_calls_on_two_workers(tmp_path):
    token = secrets.token_hex(16)
    flows = always_open_flows(tmp_path / "flows")
    with LoopbackServer(tmp_path, token, flows_dir=flows, workers=2) as srv:
        def one_call(k: int):
            answers = ["2"]
            caller = TwimlCaller(HttpTransport(srv.url, token),
                                 lambda prompts: answers.pop(0) if answers else None)
            return caller.call(call_sid(), KNOWN_CALLER, "+14155550100")

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(one_call, range(24)))
    assert all(r.ended_by == "enqueue" and r.queue == "cards" for r in results), \
        [r.ended_by for r in results]
