"""The real WSGI server (gunicorn, `ivr serve`) on loopback: signed requests from the
twilio library's RequestValidator, a restart mid-call, concurrent calls."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
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
        # the workers run under SCHED_BATCH (ivr.server.tune_process), inherited at fork
        workers = srv.worker_pids()
        assert len(workers) == 2
        assert {os.sched_getscheduler(pid) for pid in workers} == {os.SCHED_BATCH}
    assert all(r.ended_by == "enqueue" and r.queue == "cards" for r in results), \
        [r.ended_by for r in results]


@pytest.mark.parametrize(("value", "policy"), [(None, "SCHED_BATCH"), ("0", "SCHED_OTHER")])
def test_scheduling_policy_follows_the_setting(value, policy):
    env = {k: v for k, v in os.environ.items() if k != "IVR_BATCH_SCHEDULING"}
    if value is not None:
        env["IVR_BATCH_SCHEDULING"] = value
    code = ("import os; os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)); "
            "from ivr.server import tune_process; from ivr.web.settings import "
            "Settings; tune_process(Settings.from_env()); print(os.sched_getscheduler(0))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert int(out) == getattr(os, policy)
