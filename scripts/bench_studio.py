"""How fast the flow studio answers as an admin types: the server's part of
keystroke -> inline problem -> redrawn picture, on flows/bank.yaml.

Each round sends the editor's validation request (check the whole draft as ``ivr flows
check`` would, place each problem at its line, draw the SVG) with a one-character
change, alternately valid and with a misspelt target. The baseline in the same run is
``GET /healthz`` through the same app, the floor of the request path. The browser's
share (300 ms debounce + rendering) is measured by tests/test_studio_browser.py.

    .venv/bin/python scripts/bench_studio.py [--rounds 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ivr.web import create_app  # noqa: E402
from ivr.web.settings import Settings  # noqa: E402

PASSWORD = "benchmark password 1"


def _client(folder: Path):
    app = create_app(Settings(flows_dir=folder, store="memory", auth_token="bench",
                              reload_interval_s=0, routing_tick_s=0))
    app.extensions["ivr.users"].add("bench", "admin", PASSWORD)
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"username": "bench", "password": PASSWORD,
                                "csrf_token": token})
    page = client.get("/admin/flows/bank", headers={"Accept": "text/html"})
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    return client, csrf.group(1)


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"median_ms": round(statistics.median(ordered) * 1000, 1),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)] * 1000, 1),
            "max_ms": round(ordered[-1] * 1000, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=30, choices=range(2, 1001),
                        metavar="N", help="validation requests of each kind (2-1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "flows"
        shutil.copytree(ROOT / "flows", folder)
        client, csrf = _client(folder)
        text = (folder / "bank.yaml").read_text()
        headers = {"X-CSRF-Token": csrf, "Accept": "application/json"}
        valid, broken, health = [], [], []
        for k in range(args.rounds):
            t = time.perf_counter()
            client.get("/healthz")
            health.append(time.perf_counter() - t)
            draft = text.replace("Acme Bank.", f"Acme Bank{'.' * (k % 7 + 1)}", 1)
            t = time.perf_counter()
            r = client.post("/admin/flows/bank/validate", json={"text": draft}, headers=headers)
            valid.append(time.perf_counter() - t)
            assert r.json["ok"] and r.json["svg"], r.json
            bad = draft.replace("next: check_hours", "next: check_hourz", 1)
            t = time.perf_counter()
            r = client.post("/admin/flows/bank/validate", json={"text": bad}, headers=headers)
            broken.append(time.perf_counter() - t)
            assert "did you mean 'check_hours'" in r.json["problems"][0]["message"], r.json
    result = {"flow": "flows/bank.yaml", "rounds": args.rounds,
              "baseline_healthz": _ms(health), "validate_valid_draft": _ms(valid),
              "validate_draft_with_error": _ms(broken)}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"flows/bank.yaml, {args.rounds} rounds (server side, in-process):")
    for name in ("baseline_healthz", "validate_valid_draft", "validate_draft_with_error"):
        m = result[name]
        print(f"  {name:<27} median {m['median_ms']:>7.1f} ms  p95 {m['p95_ms']:>7.1f} ms  "
              f"max {m['max_ms']:>7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
