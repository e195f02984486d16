#!/usr/bin/env python3
"""Latency of the voice webhooks under the real WSGI server on loopback.

Starts `ivr serve` (gunicorn, SQLite store) on a free port, then places CALLS calls one
after another, as Twilio would: a signed POST /voice/incoming, then one signed Gather
step with speech. Reports median and p99 of each, and of GET /healthz measured in the
same run as the floor of the HTTP stack (new connection per request, like Twilio).

    python scripts/bench_webhooks.py [--calls 300] [--workers 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.console import HttpTransport  # noqa: E402
from ivr.loopback import LoopbackServer  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    token = secrets.token_hex(16)
    incoming: list[float] = []
    gather: list[float] = []
    health: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        with LoopbackServer(Path(tmp), token, flows_dir=ROOT / "flows",
                            workers=args.workers) as srv:
            http = HttpTransport(srv.url, token)
            for k in range(args.calls + 20):
                sid = "CA" + secrets.token_hex(16)
                base = {"CallSid": sid, "From": "+14155550102", "To": "+14155550100"}
                t0 = time.perf_counter()
                status, _ = http.post("/voice/incoming", base)
                t1 = time.perf_counter()
                assert status == 200, status
                status, body = http.post("/voice/step?turn=1&ev=gather",
                                         {**base, "SpeechResult": "I was charged twice",
                                          "Confidence": "0.9"})
                t2 = time.perf_counter()
                assert status == 200, status
                with urllib.request.urlopen(srv.url + "/healthz") as r:
                    r.read()
                t3 = time.perf_counter()
                if k >= 20:  # warm-up: imports, first connections, model caches
                    incoming.append((t1 - t0) * 1000)
                    gather.append((t2 - t1) * 1000)
                    health.append((t3 - t2) * 1000)
    result = {
        "calls": args.calls, "workers": args.workers, "server": "gunicorn", "store": "sqlite",
        "incoming_p50_ms": round(statistics.median(incoming), 2),
        "incoming_p99_ms": round(pct(incoming, 0.99), 2),
        "gather_p50_ms": round(statistics.median(gather), 2),
        "gather_p99_ms": round(pct(gather, 0.99), 2),
        "healthz_p50_ms": round(statistics.median(health), 2),
        "incoming_over_healthz_p50": round(statistics.median(incoming) /
                                           statistics.median(health), 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
