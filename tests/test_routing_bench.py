"""The benchmark script runs, agrees with its linear-scan baseline, and prints the agreed fields."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIELDS = {
    "agents",
    "skills",
    "assign_p50_us",
    "assign_p99_us",
    "free_p50_us",
    "free_p99_us",
    "decisions_per_s",
    "baseline_assign_p50_us",
}


def test_bench_json_lines() -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "bench_routing.py"),
            "--json",
            "--sizes",
            "60,300",
            "--ops",
            "400",
            "--baseline-samples",
            "100",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["agents"] for r in rows] == [60, 300]
    for r in rows:
        assert FIELDS <= set(r)
        assert r["skills"] == 50
        assert 0 < r["assign_p50_us"] <= r["assign_p99_us"]
        assert 0 < r["free_p50_us"] <= r["free_p99_us"]
        assert r["decisions_per_s"] > 0 and r["baseline_assign_p50_us"] > 0
