"""How fast an offer reaches the right agent desktop, with many desktops open.

Starts the real server (``ivr serve``: gunicorn, threaded workers, SQLite) on loopback
with a roster of N agents, signs N agents in, opens N agent-desktop event streams
(``/agent/events``, what each page's EventSource reads) and puts every agent Available.
Then calls arrive one by one through the signed ``/voice/incoming`` webhook of a flow that
routes at once; for each, the latency is from sending the webhook to the moment the
offered agent's stream delivers the offer. The same run measures, as its floor, the
latency of the streams seeing a presence change made by the agent's own click.

    .venv/bin/python scripts/bench_sse.py --agents 200 --calls 200 [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import ivr.users  # noqa: E402
from ivr.live.calls_store import SQLiteStore  # noqa: E402
from ivr.loopback import LoopbackServer  # noqa: E402
from ivr.users import SqlUserTable, Users  # noqa: E402

FLOW = """\
id: bench
name: SSE benchmark line
default: true
start: to_agent
nodes:
  to_agent:
    type: route
    queue: general
    skills: {general: 1}
"""
POLICY = """\
version: 1
skills: [general]
languages: [en]
reservation: {timeout_seconds: 120}
queues:
  general: {skills: {general: 1}, language: en}
"""


class Desk:
    """One signed-in agent page: a session and its event stream, read by a thread."""

    def __init__(self, base: str, name: str, password: str) -> None:
        self.base, self.name = base, name
        self.http = requests.Session()
        page = self.http.get(base + "/login").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        r = self.http.post(base + "/login", data={"username": name, "password": password,
                                                  "csrf_token": token})
        r.raise_for_status()
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"',  # type: ignore[union-attr]
                              self.http.get(base + "/agent").text).group(1)
        self.seen: dict[str, float] = {}  # call id or state -> first time seen
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            self._follow()
        except requests.RequestException:
            pass  # the server stopped at the end of the run

    def _follow(self) -> None:
        with self.http.get(self.base + "/agent/events", stream=True, timeout=600,
                           headers={"Accept": "text/event-stream"}) as r:
            for line in r.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data: "):
                    continue
                now = time.perf_counter()
                view = json.loads(line[6:])
                self.seen.setdefault("state:" + str(view["agent"]["state"]), now)
                for call in view["calls"]:
                    self.seen.setdefault(call["id"], now)
                self.ready.set()

    def post(self, path: str, body: dict) -> None:
        r = self.http.post(self.base + path, json=body, headers={
            "X-CSRF-Token": self.csrf, "Accept": "application/json"})
        r.raise_for_status()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(statistics.median(ms), 1),
            "p90_ms": round(percentile(ms, 0.90), 1), "p99_ms": round(percentile(ms, 0.99), 1),
            "max_ms": round(max(ms), 1)}


def run(agents: int, calls: int, workers: int, threads: int) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="bench-sse-"))
    flows, data = tmp / "flows", tmp / "data"
    flows.mkdir()
    (flows / "bench.yaml").write_text(FLOW)
    (flows / "routing.yaml").write_text(POLICY)
    (flows / "agents.yaml").write_text("agents:\n" + "".join(
        f"  - {{id: a{i:03d}, skills: {{general: 3}}, languages: [en], contact: "
        f"\"client:a{i:03d}\"}}\n" for i in range(agents)))
    password = secrets.token_urlsafe(12)
    ivr.users.SCRYPT_N = 2 ** 10  # sign-in cost is not what this measures
    users = Users(SqlUserTable(SQLiteStore(data / "ivr.sqlite3").connection))
    for i in range(agents):
        users.add(f"a{i:03d}", "agent", password)
    token = secrets.token_hex(16)
    srv = LoopbackServer(data, token, flows_dir=flows, workers=workers, threads=threads)
    srv.start(timeout_s=180)  # a busy machine imports slowly
    try:
        with ThreadPoolExecutor(16) as pool:
            desks = list(pool.map(lambda i: Desk(srv.url, f"a{i:03d}", password),
                                  range(agents)))
        for d in desks:
            d.ready.wait(30)
        # the floor: an agent's own click, seen on the agent's own stream
        presence = []
        with ThreadPoolExecutor(8) as pool:
            def available(d: Desk) -> float:
                t0 = time.perf_counter()
                d.post("/agent/presence", {"state": "available"})
                deadline = time.perf_counter() + 10
                while "state:available" not in d.seen and time.perf_counter() < deadline:
                    time.sleep(0.005)
                return (d.seen.get("state:available", float("inf")) - t0) * 1000
            presence = list(pool.map(available, desks))
        validator = RequestValidator(token)
        by_name = {d.name: d for d in desks}
        offers, missed = [], 0
        for _ in range(calls):
            sid = "CA" + secrets.token_hex(16)
            params = {"CallSid": sid, "From": "+15005550006", "To": "+15005550000",
                      "CallStatus": "ringing"}
            url = srv.url + "/voice/incoming"
            t0 = time.perf_counter()
            r = requests.post(url, data=params, headers={
                "X-Twilio-Signature": validator.compute_signature(url, params)})
            r.raise_for_status()
            deadline = t0 + 5
            got = None
            while got is None and time.perf_counter() < deadline:
                for d in by_name.values():
                    if sid in d.seen:
                        got = d.seen[sid]
                        break
                else:
                    time.sleep(0.002)
            if got is None:
                missed += 1
            else:
                offers.append((got - t0) * 1000)
            time.sleep(0.05)
    finally:
        srv.stop()
    return {"agents": agents, "calls": calls, "workers": workers, "threads": threads,
            "offer_latency": summary(offers) if offers else None, "offers_missed": missed,
            "baseline_own_click_latency": summary([p for p in presence if p != float("inf")])}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=200)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=128)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if not 1 <= args.agents <= 2000 or not 1 <= args.calls <= args.agents:
        p.error("--agents 1-2000 and --calls 1..agents (each agent gets at most one offer)")
    if args.workers * args.threads < args.agents + 8:
        p.error("--workers x --threads must exceed --agents (each page holds a thread)")
    result = run(args.agents, args.calls, args.workers, args.threads)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        o, b = result["offer_latency"], result["baseline_own_click_latency"]
        print(f"{args.agents} agent pages on {args.workers} workers x {args.threads} threads")
        if o:
            print(f"offer on the right page: p50 {o['p50_ms']} ms, p90 {o['p90_ms']} ms, "
                  f"p99 {o['p99_ms']} ms, max {o['max_ms']} ms ({o['n']} calls, "
                  f"{result['offers_missed']} missed)")
        print(f"baseline, own click seen: p50 {b['p50_ms']} ms, p99 {b['p99_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
