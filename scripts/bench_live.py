#!/usr/bin/env python3
"""Throughput and latency of the live call path at saturation, SQLite and PostgreSQL.

Per configuration: a fresh store seeded with AGENTS available agents (skill ``cards``)
and WAITING calls waiting in ``loans`` (a skill none of them has, so they stay queued),
then ``ivr serve`` host(s) on loopback and CLIENTS threads placing real calls as fast as
they can, each request of a call to a random host: a signed ``/voice/incoming``, the
signed Gather step that routes the call (an agent is reserved; the redirect goes to a
local stand-in for Twilio's REST API), the signed ``/voice/connect``, the agent's accept
through the agent API, and the signed ``/voice/agent-done`` that completes the call.
``routing_op_*`` are quantiles of the servers' ``ivr_routing_operation_seconds``
histogram over the run (interpolated within its buckets). ``baseline_req_per_s`` is a
minimal Flask app (validates the Twilio signature, returns a fixed Gather built with the
twilio library) under the same gunicorn, workers and load, measured in the same run in
2-second turns with the configuration's load (so the machine's other work weighs on both
alike); ``ratio`` is ``req_per_s / baseline_req_per_s``. ``server_cpu_ms_per_req`` is the
servers' CPU time (all processes) per request over the run.

The clients are never idle, so by Little's law their mean latency is CLIENTS / req_per_s:
past the load that saturates the path, more clients only lengthen the queue in front of
it (16 clients at 400 req/s wait 40 ms on average, whatever the path costs). The default
load, 8 clients, is the fewest that saturate it here (see ``CLIENTS``); ``--clients``
shows the curve either side. ``baseline_p99_ms`` is the baseline's own p99 at that load.

    python scripts/bench_live.py [--json] [--seconds 8] [--clients 8] [--workers 2]
                                 [--only sqlite|postgres] [--agents N] [--waiting N]
                                 [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.console import sign  # noqa: E402
from ivr.loopback import LoopbackServer, always_open_flows, free_port  # noqa: E402

PUBLIC = "https://ivr.example.com"
ADMIN, AGENT = secrets.token_hex(16), secrets.token_hex(16)
#: Time routing operations outside a call step waited for the routing lock (reported apart:
#: ``routing_op_*`` is the operation itself, holding the lock).
WAIT = "ivr_routing_lock_wait_seconds"
#: How long a caller waits for the redirect to their agent before it counts as an error.
REDIRECT_WAIT_S = 3.0
#: Load generator threads: the fewest that saturate the path on the 2-core machine (one
#: sitting, two rounds, SQLite, 1,000 agents: 4 clients 193-295 req/s, 8 clients 344-351,
#: 16 clients 193-254, 32 clients 224-239: past 8 the rate stays or falls and only the
#: queue grows).
CLIENTS = 8
#: Length of one turn of the baseline's load or a configuration's (seconds).
SLICE_S = 2.0
CALLER = "+14155550102"  # a known customer of the example bank: "2" is cards
BASELINE_APP = '''
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import VoiceResponse
import os
app = Flask(__name__)
validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
PUBLIC = os.environ["PUBLIC"]

@app.post("/<path:path>")
def any_webhook(path):
    url = PUBLIC + request.full_path.rstrip("?")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(url, request.form.to_dict(), signature):
        return Response("forbidden", 403)
    r = VoiceResponse()
    g = r.gather(num_digits=1, action="/voice/step?turn=1&ev=gather", method="POST")
    g.say("Press 1 for billing, 2 for cards.")
    return Response(str(r), 200, mimetype="text/xml")
'''


class TwilioStandIn:
    """Twilio's REST API on loopback: remembers which agent each call was redirected to."""

    def __init__(self) -> None:
        self.agent_of: dict[str, str] = {}
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
                sid = self.path.rsplit("/", 1)[-1].removesuffix(".json")
                q = urllib.parse.parse_qs(urllib.parse.urlsplit(form.get("Url", "")).query)
                if "agent" in q:
                    with stand_in._arrived:
                        stand_in.agent_of[q["call"][0]] = q["agent"][0]
                        stand_in._arrived.notify_all()
                out = json.dumps({"sid": sid, "status": "in-progress"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._arrived = threading.Condition()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def redirected(self, call_sid: str, wait_s: float) -> str | None:
        """The agent the call was redirected to, waiting up to ``wait_s`` for the server's
        outbox sender (it asks Twilio after the routing step's commit, not inside it),
        as a caller on hold waits for the redirect."""
        with self._arrived:
            self._arrived.wait_for(lambda: call_sid in self.agent_of, timeout=wait_s)
            return self.agent_of.get(call_sid)


def post(url: str, path: str, params: dict[str, str], token: str,
         bearer: str | None = None) -> tuple[int, str]:
    if bearer:
        data, headers = b"{}", {"Authorization": f"Bearer {bearer}",
                                "Content-Type": "application/json"}
    else:
        data = urllib.parse.urlencode(params).encode()
        headers = {"X-Twilio-Signature": sign(token, PUBLIC + path, params),
                   "Content-Type": "application/x-www-form-urlencoded"}
    req = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


#: Latencies of the last load, by route (for the per-route breakdown printed with --routes).
ROUTES: dict[str, list[float]] = {}


def _route(path: str) -> str:
    base = path.split("?")[0]
    return "/agents/<id>/offers/<call>/accept" if base.startswith("/agents/") else base


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def load(hosts: list[str], token: str, seconds: float, clients: int, full: bool,
         stand_in: TwilioStandIn | None) -> tuple[int, list[float], list[str]]:
    """CLIENTS threads calling until SECONDS pass; returns (requests, latencies, errors)."""
    latencies: list[float] = []
    by_route: dict[str, list[float]] = ROUTES
    errors: list[str] = []
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def timed(path: str, params: dict[str, str], bearer: str | None = None) -> tuple[int, str]:
        nonlocal count
        t0 = time.perf_counter()
        status, body = post(random.choice(hosts), path, params, token, bearer)
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt)
            by_route.setdefault(_route(path), []).append(dt)
            count += 1
            if status >= 400:
                errors.append(f"{path.split('?')[0]} {status}")
        return status, body

    def client() -> None:
        while time.monotonic() < stop:
            sid = "CA" + secrets.token_hex(16)
            base = {"CallSid": sid, "From": CALLER, "To": "+14155550100"}
            timed("/voice/incoming", base)
            if not full:
                continue
            timed("/voice/step?turn=1&ev=gather", {**base, "Digits": "2"})
            agent = stand_in.redirected(sid, REDIRECT_WAIT_S) if stand_in else None
            if agent is None:
                with lock:
                    errors.append("no agent reserved")
                continue
            q = f"call={sid}&agent={agent}"
            timed(f"/voice/connect?{q}", {"CallSid": sid})
            timed(f"/agents/{agent}/offers/{sid}/accept", {}, bearer=AGENT)
            timed(f"/voice/agent-done?{q}", {"CallSid": sid, "DialCallStatus": "completed"})

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count, latencies, errors


def histogram(hosts: list[str], name: str = "ivr_routing_operation_seconds"
              ) -> dict[float, float]:
    """Cumulative bucket counts of a histogram of the servers, summed over hosts."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    for url in hosts:
        req = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read().decode()
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if s.name == f"{name}_bucket":
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    return buckets


def hist_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]
    total = counts[-1] if counts else 0
    if not total:
        return float("nan")
    rank, lo, prev = q * total, 0.0, 0.0
    for edge, c in zip(edges, counts, strict=True):
        if c >= rank:
            if edge == float("inf"):
                return lo
            return lo + (edge - lo) * ((rank - prev) / (c - prev) if c > prev else 0.0)
        lo, prev = edge, c
    return lo


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (gunicorn's
    workers), from ``/proc``: 0 where it is not readable."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    seen, todo, total = set(), list(pids), 0.0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def seed(state: Any, agents: int, waiting: int) -> None:
    from routing import Agent, AgentState, Call

    now = time.time() - 1.0
    with state.update() as router:
        for a in range(agents):
            router.add_agent(Agent(id=f"ag{a}", skills={"cards": 3}, languages={"en"},
                                   wrap_up_seconds=0, presence=AgentState.AVAILABLE), now)
        for c in range(waiting):
            router.enqueue(Call(id=f"CAwait{c:06d}", queue="loans", skills={"loans": 5}), now)
    for a in range(agents):
        state.set_contact(f"ag{a}", f"client:ag{a}")


def run_config(backend: str, hosts_n: int, agents: int, waiting: int, args: argparse.Namespace,
               work: Path, token: str, base: tuple[str, int]) -> dict[str, Any]:
    from routing import load_policy

    flows = work / "flows"
    if not flows.exists():
        always_open_flows(flows)
        (flows / "agents.yaml").unlink(missing_ok=True)  # the seeded agents only
    policy = load_policy(flows / "routing.yaml")
    tag = f"{backend}-{hosts_n}-{agents}-{waiting}"
    env = {"IVR_PUBLIC_URL": PUBLIC, "IVR_ADMIN_TOKEN": ADMIN, "IVR_AGENT_TOKEN": AGENT,
           "TWILIO_ACCOUNT_SID": "AC" + "1" * 32}
    schema = None
    if backend == "sqlite":
        from ivr.live.calls_store import SQLiteStore
        from ivr.live.routing_store import SQLiteRoutingState

        data = work / tag
        seed(SQLiteRoutingState(SQLiteStore(data / "ivr.sqlite3").connection, policy),
             agents, waiting)
    else:
        import psycopg

        from ivr.live.postgres import PostgresDatabase, PostgresRoutingDB
        from ivr.live.routing_store import JournalRoutingState

        schema = f"ivr_bench_{secrets.token_hex(4)}"
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        sep = "&" if "?" in args.database_url else "?"
        env["IVR_DATABASE_URL"] = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
        db = PostgresDatabase(env["IVR_DATABASE_URL"])
        db.upgrade()
        seed(JournalRoutingState(PostgresRoutingDB(db), policy), agents, waiting)
        db.close()
    stand_in = TwilioStandIn()
    env["IVR_TWILIO_API_URL"] = stand_in.url
    # SQLite: the host serves the seeded store; PostgreSQL: each host its own data dir
    dirs = [work / tag] if backend == "sqlite" else [work / f"{tag}-h{k}" for k in range(hosts_n)]
    servers = [LoopbackServer(dirs[k], token, flows_dir=flows,
                              workers=args.workers, extra_env=env) for k in range(hosts_n)]
    try:
        threads = [threading.Thread(target=s.start, kwargs={"timeout_s": 180}) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        urls = [s.url for s in servers]
        load(urls, token, 1.0, 2, True, stand_in)  # warm up every worker
        base_url, base_pid = base
        load([base_url], token, 0.5, 2, False, None)
        before = histogram(urls)
        waited_before = histogram(urls, WAIT)
        pids = [s.proc.pid for s in servers if s.proc is not None]
        ROUTES.clear()
        # Slices of the baseline's load and this configuration's, taking turns: a
        # shared machine's other work then weighs on both alike (run one after the
        # other, seconds apart, the ratio moved by a third between identical runs).
        n = base_n = 0
        elapsed = base_elapsed = cpu = base_cpu = 0.0
        lat: list[float] = []
        base_lat: list[float] = []
        errors: list[str] = []
        slices = max(1, round(args.seconds / SLICE_S))
        for _ in range(slices):
            cpu0, t0 = cpu_seconds([base_pid]), time.perf_counter()
            k, more_base, base_errors = load([base_url], token, args.seconds / slices,
                                             args.clients, False, None)
            base_elapsed += time.perf_counter() - t0
            base_cpu += cpu_seconds([base_pid]) - cpu0
            base_lat += more_base
            base_n += k
            if base_errors:
                raise RuntimeError(f"baseline answered errors: {sorted(set(base_errors))[:3]}")
            cpu0 = cpu_seconds(pids)
            t0 = time.perf_counter()
            k, more_lat, more_errors = load(urls, token, args.seconds / slices, args.clients,
                                            True, stand_in)
            elapsed += time.perf_counter() - t0
            cpu += cpu_seconds(pids) - cpu0
            n, lat, errors = n + k, lat + more_lat, errors + more_errors
        routes = {r: {"p50_ms": round(pct(v, 0.5) * 1000, 1),
                      "p99_ms": round(pct(v, 0.99) * 1000, 1)} for r, v in ROUTES.items()}
        after = histogram(urls)
        waited = histogram(urls, WAIT)
    finally:
        for s in servers:
            s.stop()
        stand_in.server.shutdown()
        if schema:
            import psycopg

            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    base_rate = round(base_n / base_elapsed, 1)
    return {"backend": backend, "hosts": hosts_n, "agents": agents, "waiting": waiting,
            "req_per_s": round(n / elapsed, 1), "baseline_req_per_s": base_rate,
            "ratio": round(n / elapsed / base_rate, 3),
            "baseline_p99_ms": round(pct(base_lat, 0.99) * 1000, 1),
            "p50_ms": round(pct(lat, 0.5) * 1000, 1),
            "p99_ms": round(pct(lat, 0.99) * 1000, 1),
            "routing_op_p50_ms": round(hist_quantile(before, after, 0.5) * 1000, 2),
            "routing_op_p99_ms": round(hist_quantile(before, after, 0.99) * 1000, 2),
            "routing_wait_p50_ms": round(hist_quantile(waited_before, waited, 0.5) * 1000, 2),
            "routing_wait_p99_ms": round(hist_quantile(waited_before, waited, 0.99) * 1000, 2),
            "server_cpu_ms_per_req": round(1000 * cpu / n, 2) if n else None,
            "baseline_cpu_ms_per_req": round(1000 * base_cpu / base_n, 2) if base_n else None,
            "errors": len(errors), "error_kinds": sorted(set(errors))[:5],
            **({"routes": routes} if args.routes else {})}


@contextmanager
def baseline(args: argparse.Namespace, work: Path, token: str) -> Iterator[tuple[str, int]]:
    """The baseline app under gunicorn, same workers; yields its URL and process id."""
    app_dir = work / "baseline"
    app_dir.mkdir(exist_ok=True)
    (app_dir / "baseline_app.py").write_text(BASELINE_APP)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers",
         str(args.workers), "--log-level", "warning", "baseline_app:app"],
        cwd=app_dir, env={**os.environ, "TWILIO_AUTH_TOKEN": token, "PUBLIC": PUBLIC})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if post(url, "/voice/incoming", {"CallSid": "CA0"}, token)[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="one JSON line per configuration")
    ap.add_argument("--seconds", type=float, default=8.0, help="load time per configuration")
    ap.add_argument("--clients", type=int, default=CLIENTS, help="load generator threads")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers per host")
    ap.add_argument("--only", choices=["sqlite", "postgres"], help="one backend only")
    ap.add_argument("--routes", action="store_true",
                    help="add each route's client-side p50/p99 (key 'routes')")
    ap.add_argument("--agents", type=int, choices=[100, 1000, 10_000],
                    help="only the configurations with this many agents")
    ap.add_argument("--waiting", type=int, choices=[0, 2000],
                    help="only the configurations with this many waiting calls")
    ap.add_argument("--database-url", default=os.environ.get(
        "IVR_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    for name, value, low in (("--seconds", args.seconds, 1), ("--clients", args.clients, 1),
                             ("--workers", args.workers, 1)):
        if value < low:
            ap.error(f"{name} must be at least {low}, got {value}")
    configs = [("sqlite", 1, a, w) for a in (100, 1000, 10_000) for w in (0, 2000)]
    configs += [("postgres", 1, 1000, 0), ("postgres", 2, 1000, 0)]
    if args.only:
        configs = [c for c in configs if c[0] == args.only]
    if args.agents:
        configs = [c for c in configs if c[2] == args.agents]
    if args.waiting is not None:
        configs = [c for c in configs if c[3] == args.waiting]
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="ivr-bench-live-") as tmp:
        work = Path(tmp)
        # One baseline server for the run; each configuration measures it in turns with
        # its own load (run_config), so both see the same moments of the machine.
        with baseline(args, work, token) as base:
            for backend, hosts_n, agents, waiting in configs:
                row = run_config(backend, hosts_n, agents, waiting, args, work, token, base)
                rate = row["baseline_req_per_s"]
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"{backend:8} hosts={hosts_n} agents={agents:>6} waiting={waiting:>5}: "
                          f"{row['req_per_s']:>7} req/s (baseline {rate}), p50 {row['p50_ms']} ms, "
                          f"p99 {row['p99_ms']} ms, routing op p50 {row['routing_op_p50_ms']} ms "
                          f"p99 {row['routing_op_p99_ms']} ms, errors {row['errors']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
