"""``GET /metrics``: Prometheus' text format behind the admin token, with webhook and
routing latency, queue figures and agents by state; and under gunicorn's workers."""

from __future__ import annotations

import secrets
import urllib.request

import pytest
from conftest import KNOWN_CALLER, always_open_flows
from fake_twilio import FakeTwilioAPI
from prometheus_client.parser import text_string_to_metric_families
from test_live_routing import ADMIN_TOKEN, AGENT_AUTH, Center

from ivr.console import HttpTransport, TwimlCaller
from ivr.loopback import LoopbackServer


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


@pytest.fixture
def center():
    with FakeTwilioAPI() as api:
        yield Center(api)


def test_metrics_need_the_admin_token_and_report_the_live_router(center):
    assert center.client.get("/metrics").status_code == 401
    assert center.client.get("/metrics", headers=AGENT_AUTH).status_code in (401, 403)
    center.agent("bob", {"cards": 5}, "client:bob")
    center.call(["2"])  # offered to bob
    center.call(["2"], caller="+14155550103")  # waits
    r = center.client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200 and r.mimetype == "text/plain"
    s = _samples(r.get_data(as_text=True))
    assert s[("ivr_queue_waiting_calls", (("queue", "cards"),))] == 1
    assert s[("ivr_queue_waiting_calls", (("queue", "billing"),))] == 0
    assert s[("ivr_agents", (("state", "reserved"),))] == 1
    step = [v for (name, labels), v in s.items() if name == "ivr_http_request_seconds_count"
            and ("route", "/voice/step") in labels]
    assert sum(step) >= 2  # both calls' menu answers
    assert s[("ivr_routing_operation_seconds_count", ())] >= 3  # add, state, 2 enqueues
    assert ("ivr_queue_longest_wait_seconds", (("queue", "cards"),)) in s


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(tmp_path):
    token, admin = secrets.token_hex(16), secrets.token_hex(16)
    flows = always_open_flows(tmp_path / "flows")
    with LoopbackServer(tmp_path / "var", token, flows_dir=flows, workers=2,
                        extra_env={"IVR_ADMIN_TOKEN": admin}) as srv:
        for _ in range(6):
            answers = ["2"]
            TwimlCaller(HttpTransport(srv.url, token),
                        lambda p, a=answers: a.pop(0) if a else None).call(
                "CA" + secrets.token_hex(16), KNOWN_CALLER, "+14155550100")
        req = urllib.request.Request(srv.url + "/metrics",
                                     headers={"Authorization": f"Bearer {admin}"})
        with urllib.request.urlopen(req, timeout=15) as resp:
            s = _samples(resp.read().decode())
    incoming = sum(v for (name, labels), v in s.items()
                   if name == "ivr_http_request_seconds_count"
                   and ("route", "/voice/incoming") in labels)
    assert incoming == 6  # whichever worker answered each
    assert s[("ivr_queue_waiting_calls", (("queue", "cards"),))] == 6
