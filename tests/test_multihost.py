"""Three ``ivr serve`` hosts (own data dirs, own ports) share one PostgreSQL. Each webhook
and API request of a call goes to a random host, as a load balancer would; one host is
killed with SIGKILL mid-load and its requests are retried on another, as Twilio retries.
Every call is accounted for and no agent is ever booked twice."""

from __future__ import annotations

import http.client
import json
import os
import random
import secrets
import signal
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import KNOWN_CALLER, always_open_flows, call_sid
from fake_twilio import FakeTwilioAPI

from ivr.console import TwimlCaller, sign
from ivr.live.postgres import PostgresDatabase, PostgresRoutingDB
from ivr.live.routing_store import JournalRoutingState
from ivr.loopback import LoopbackServer
from routing import load_policy

pytestmark = pytest.mark.slow
PUBLIC = "https://ivr.example.com"
AGENT_TOKEN, ADMIN_TOKEN = secrets.token_hex(16), secrets.token_hex(16)


class Balancer:
    """Sends each request to a random live host; a host that does not answer is taken
    out and the request retried on another (what Twilio's retry does for a webhook)."""

    def __init__(self, hosts: list[LoopbackServer], token: str) -> None:
        self.hosts, self.token = hosts, token
        self.down: set[int] = set()
        self.retries = 0
        self._rng = random.Random(7)
        self._lock = threading.Lock()

    def _send(self, path: str, data: bytes, headers: dict[str, str]) -> tuple[int, str]:
        for _ in range(6):
            with self._lock:
                alive = [h for h in self.hosts if h.port not in self.down]
                host = self._rng.choice(alive)
            req = urllib.request.Request(host.url + path, data=data, method="POST",
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=15) as resp:
                    return resp.status, resp.read().decode()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read().decode()
            except (OSError, http.client.HTTPException):  # refused, reset, or cut
                # mid-answer (IncompleteRead is no OSError): the host is gone
                with self._lock:
                    self.down.add(host.port)
                    self.retries += 1
        raise AssertionError(f"no host answered {path}")

    def post(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        """A signed webhook, as Twilio sends it to the public URL."""
        data = urllib.parse.urlencode(params).encode()
        return self._send(path, data, {
            "X-Twilio-Signature": sign(self.token, PUBLIC + path, params),
            "Content-Type": "application/x-www-form-urlencoded"})

    def api(self, path: str, body: dict) -> tuple[int, str]:
        return self._send(path, json.dumps(body).encode(), {
            "Authorization": f"Bearer {AGENT_TOKEN}", "Content-Type": "application/json"})

    def put_agent(self, agent_id: str, body: dict) -> None:
        data = json.dumps(body).encode()
        host = self._rng.choice(self.hosts)
        req = urllib.request.Request(f"{host.url}/agents/{agent_id}", data=data, method="PUT",
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=15) as resp:
            assert resp.status == 200


def kill_host(srv: LoopbackServer) -> None:
    """SIGKILL the host: its workers, then its master (no graceful anything)."""
    assert srv.proc is not None
    for child in srv.worker_pids():
        os.kill(child, signal.SIGKILL)
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait()


def test_three_hosts_one_killed_mid_load_lose_no_call_and_book_no_agent_twice(
        tmp_path, pg_url):
    url = pg_url()
    token = secrets.token_hex(16)
    flows = always_open_flows(tmp_path / "flows")
    agents, n_calls = 4, 18
    with FakeTwilioAPI() as api:
        env = {"IVR_DATABASE_URL": url, "IVR_PUBLIC_URL": PUBLIC, "IVR_AGENT_TOKEN": AGENT_TOKEN,
               "IVR_ADMIN_TOKEN": ADMIN_TOKEN,
               "TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "IVR_TWILIO_API_URL": api.url}
        hosts = [LoopbackServer(tmp_path / f"host{k}", token, flows_dir=flows, workers=1,
                                extra_env=env) for k in range(3)]
        try:
            with ThreadPoolExecutor(3) as pool:  # the hosts boot side by side
                list(pool.map(lambda h: h.start(timeout_s=120), hosts))
            lb = Balancer(hosts, token)
            for a in range(agents):
                lb.put_agent(f"ag{a}", {"skills": {"cards": 3}, "languages": ["en"],
                                        "contact": f"client:ag{a}", "wrap_up_seconds": 0})
                assert lb.api(f"/agents/ag{a}/state", {"state": "available"})[0] == 200
            completed: dict[str, str] = {}
            handled = 0
            done = threading.Event()

            def agent_side() -> None:
                """Follow every redirect the hosts asked of Twilio's API: the caller's leg
                dials the agent, the agent answers, talks, and hangs up."""
                nonlocal handled
                while not done.is_set():
                    reqs = api.requests[handled:]
                    if not reqs:
                        time.sleep(0.05)
                        continue
                    handled += len(reqs)
                    for req in reqs:
                        q = parse_qs(urlsplit(req.form.get("Url", "")).query)
                        sid, agent = q["call"][0], q["agent"][0]
                        query = f"call={sid}&agent={agent}"
                        status, body = lb.post(f"/voice/connect?{query}", {"CallSid": sid})
                        if status != 200 or "<Dial" not in body:
                            continue  # the reservation moved on meanwhile
                        lb.post(f"/voice/whisper?{query}", {"CallSid": "CA" + "9" * 32})
                        status, _ = lb.post(f"/voice/agent-done?{query}",
                                            {"CallSid": sid, "DialCallStatus": "completed"})
                        if status == 200:
                            completed[sid] = agent

            def keep_agents_available() -> None:  # an agent timed out goes on break
                while not done.wait(2.0):
                    for a in range(agents):
                        lb.api(f"/agents/ag{a}/state", {"state": "available"})

            def one_call(k: int) -> str:
                if k == n_calls // 3:
                    kill_host(hosts[1])
                answers = ["2"]
                result = TwimlCaller(lb, lambda prompts: answers.pop(0) if answers else None
                                     ).call(call_sid(), KNOWN_CALLER, "+14155550100")
                assert result.ended_by == "enqueue", result
                return result.call_sid

            side = [threading.Thread(target=agent_side), threading.Thread(
                target=keep_agents_available)]
            for t in side:
                t.start()
            try:
                with ThreadPoolExecutor(4) as pool:
                    sids = list(pool.map(one_call, range(n_calls)))
                deadline = time.monotonic() + 60
                while len(completed) < n_calls and time.monotonic() < deadline:
                    time.sleep(0.2)
            finally:
                done.set()
                for t in side:
                    t.join(30)
        finally:
            for h in hosts:
                h.stop()

    assert lb.retries > 0, "the killed host was never asked: the test killed nothing"
    db = PostgresDatabase(url, max_size=1)
    try:
        router = JournalRoutingState(PostgresRoutingDB(db),
                                     load_policy(flows / "routing.yaml")).read()
        with db.reading() as conn:
            decisions = [(c, json.loads(d)) for c, d in conn.execute(
                "SELECT call_id, data FROM routing_decisions ORDER BY id").fetchall()]
            sessions = {r[0] for r in conn.execute("SELECT call_id FROM sessions")}
    finally:
        db.close()
    router.check_invariants()
    lost = [s for s in sids if s not in completed and s not in router.calls]
    assert not lost, f"calls neither completed nor held by the router: {lost}"
    assert set(sids) <= sessions
    assert sorted(completed) == sorted(sids), f"{len(completed)} of {n_calls} completed"
    # no agent ever held two calls (capacity 1): replay the decisions in their order
    held: dict[str, set[str]] = {f"ag{a}": set() for a in range(agents)}
    for call_id, d in decisions:
        if d["kind"] == "offered":
            held[d["agent_id"]].add(call_id)
            assert len(held[d["agent_id"]]) <= 1, f"{d['agent_id']} double-booked: {held}"
        elif d["kind"] in ("rejected", "timed_out", "completed", "abandoned") and d["agent_id"]:
            held[d["agent_id"]].discard(call_id)
    ends = [c for c, d in decisions if d["kind"] == "completed"]
    assert sorted(ends) == sorted(sids), "each call completed exactly once"
