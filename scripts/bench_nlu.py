#!/usr/bin/env python3
"""Benchmark intent recognition on Banking77 and CLINC150 through ``ivr nlu eval``.

Validation splits are made from the shared training data only:
- Banking77: a stratified 10% of ``banking77/train.csv`` is held out, once per
  ``--seeds`` value (default 0 1 2: three splits, so the figures come with their spread).
- CLINC150: train = ``train`` + ``oos_train``; validation = ``val`` + ``oos_val``
  (the ``test`` / ``oos_test`` keys are held out from developers). Its split is fixed,
  so it runs once whatever the seeds.

After the per-run lines, one ``"summary": true`` JSON line per data set, backend and
threshold gives the mean, standard deviation, minimum and maximum of each metric over
the seeds.

Each eval runs in a fresh process (so ``peak_rss_mb`` is per data set) with the
same code path as the IVR. Pass ``--banking77-test`` / ``--clinc-test`` (text,category
CSV) to score the held-out test splits instead of the validation splits.

Backends: ``linear`` always; ``embeddings`` too when its extra is installed
(``pip install '.[embeddings]'``), unless ``--backend`` says otherwise.

    python scripts/bench_nlu.py [--data ../shared/data] [--threshold auto 0 0.5] [--out DIR]
                                [--backend linear embeddings] [--suite banking77 clinc150]
                                [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "category"])
        writer.writerows(rows)
    return path


def stratified_split(rows: list[tuple[str, str]], share: float, seed: int) -> tuple[list, list]:
    by_class: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for row in rows:
        by_class[row[1]].append(row)
    rng = random.Random(seed)
    train, val = [], []
    for category in sorted(by_class):
        items = by_class[category][:]
        rng.shuffle(items)
        n_val = max(1, round(len(items) * share))
        val += items[:n_val]
        train += items[n_val:]
    return train, val


def banking77_csvs(data: Path, out: Path, share: float, seed: int) -> tuple[Path, Path]:
    with (data / "banking77" / "train.csv").open(newline="", encoding="utf-8") as fh:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(fh)]
    train, val = stratified_split(rows, share, seed)
    return (write_csv(out / f"banking77_train_seed{seed}.csv", train),
            write_csv(out / f"banking77_val_seed{seed}.csv", val))


def clinc150_csvs(data: Path, out: Path) -> tuple[Path, Path]:
    """Convert CLINC150's JSON (items ``[text, intent]``) to text,category CSV."""
    with (data / "clinc150" / "data_full_trainval.json").open(encoding="utf-8") as fh:
        raw = json.load(fh)
    train = [(t, c) for t, c in raw["train"] + raw["oos_train"]]
    val = [(t, c) for t, c in raw["val"] + raw["oos_val"]]
    return write_csv(out / "clinc150_train.csv", train), write_csv(out / "clinc150_val.csv", val)


def embeddings_missing() -> str | None:
    """Why the embeddings backend cannot run (None when it can), without importing torch."""
    sys.path.insert(0, str(ROOT))
    try:
        from ivr.nlu.embeddings import missing
    finally:
        sys.path.pop(0)
    return missing()


def run_eval(train: Path, test: Path, thresholds: list[str], backend: str = "linear") -> list[dict]:
    """One ``ivr nlu eval`` (one training) in a fresh process; metrics per threshold."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    cmd = [
        sys.executable,
        "-m",
        "ivr.nlu",
        "eval",
        "--train",
        str(train),
        "--test",
        str(test),
        "--json",
        "--backend",
        backend,
        "--threshold",
        *thresholds,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"eval failed ({done.returncode}): {done.stderr.strip()}")
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    for threshold, line in zip(thresholds, lines, strict=True):
        line.pop("threshold", None)
        line["threshold"] = threshold
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="where to write the CSV splits")
    parser.add_argument(
        "--threshold",
        nargs="+",
        default=["auto", "0"],
        help="thresholds to run ('auto' = the model's recommended one; "
        "0 = never reject, i.e. plain "
        "top-1 accuracy as in the published Banking77 numbers)",
    )
    parser.add_argument("--val-share", type=float, default=0.1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="Banking77 validation splits to run (one training each)")
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=["linear", "embeddings"],
        default=None,
        help="backends to run (default: linear, plus embeddings when its extra is installed)",
    )
    parser.add_argument(
        "--suite", nargs="+", choices=["banking77", "clinc150"], default=["banking77", "clinc150"]
    )
    parser.add_argument("--banking77-test", type=Path, default=None)
    parser.add_argument("--clinc-test", type=Path, default=None)
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="bench_nlu_"))
    out.mkdir(parents=True, exist_ok=True)
    suites: list[tuple[str, int | None, Path, Path]] = []
    if "banking77" in args.suite:
        for seed in args.seeds if not args.banking77_test else args.seeds[:1]:
            b_train, b_val = banking77_csvs(args.data, out, args.val_share, seed)
            suites.append(("banking77", seed, b_train, args.banking77_test or b_val))
    if "clinc150" in args.suite:
        c_train, c_val = clinc150_csvs(args.data, out)
        suites.append(("clinc150", None, c_train, args.clinc_test or c_val))
    backends = args.backend
    if backends is None:
        backends = ["linear"]
        reason = embeddings_missing()
        if reason is None:
            backends.append("embeddings")
        else:
            print(f"skipping backend 'embeddings': {reason}", file=sys.stderr)
    results = []
    for backend in backends:
        for name, seed, train, test in suites:
            for metrics in run_eval(train, test, args.threshold, backend):
                threshold = metrics.pop("threshold")
                results.append(
                    {
                        "data": name,
                        "backend": backend,
                        "seed": seed,
                        "test": test.name,
                        "threshold": threshold,
                        **metrics,
                    }
                )
                print(json.dumps(results[-1]), flush=True)
    keys = [
        "accuracy",
        "macro_f1",
        "oos_recall",
        "in_scope_false_reject",
        "p50_ms",
        "p99_ms",
        "p99_cpu_ms",
        "train_s",
        "train_cpu_s",
        "peak_rss_mb",
    ]
    summaries = summarise(results, keys)
    for summary in summaries:
        print(json.dumps(summary), flush=True)
    print(f"\n{'data':<10} {'backend':<10} {'seed':>5} {'thr':>5} "
          + " ".join(f"{k:>12}" for k in keys))
    for r in results:
        cells = " ".join(f"{'-' if r[k] is None else r[k]:>12}" for k in keys)
        seed = "-" if r["seed"] is None else r["seed"]
        print(f"{r['data']:<10} {r['backend']:<10} {seed:>5} {r['threshold']:>5} {cells}")
    print("\nover the seeds: mean ± sd [min, max]")
    for summary in summaries:
        acc = summary["accuracy"]
        print(f"{summary['data']:<10} {summary['backend']:<10} thr {summary['threshold']:>5} "
              f"n={summary['runs']}: accuracy {acc['mean']} ± {acc['sd']} "
              f"[{acc['min']}, {acc['max']}]")
    return 0


def summarise(results: list[dict], keys: list[str]) -> list[dict]:
    """Mean, sd, min and max of each metric over the runs (seeds) of one data set,
    backend and threshold."""
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in results:
        groups[(r["data"], r["backend"], r["threshold"])].append(r)
    out = []
    for (data, backend, threshold), runs in groups.items():
        summary: dict = {"summary": True, "data": data, "backend": backend,
                         "threshold": threshold, "runs": len(runs),
                         "seeds": [r["seed"] for r in runs]}
        for key in keys:
            values = [r[key] for r in runs if r.get(key) is not None]
            summary[key] = None if not values else {
                "mean": round(statistics.fmean(values), 4),
                "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}
        out.append(summary)
    return out


if __name__ == "__main__":
    sys.exit(main())
