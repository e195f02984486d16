"""``ivr nlu eval`` and ``ivr nlu try`` on small fixtures."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from ivr.nlu import build_recognizer
from ivr.nlu import cli as nlu_cli

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "nlu"
KEYS = [
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


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("IVR_NLU_BACKEND", raising=False)


def _ivr(argv: list[str]) -> int:
    """Run ``ivr ARGV`` through a parser built like the main CLI's."""
    parser = argparse.ArgumentParser(prog="ivr")
    nlu_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_eval_prints_exactly_the_metrics(capsys):
    code = _ivr(
        [
            "nlu",
            "eval",
            "--train",
            str(FIXTURES / "train.csv"),
            "--test",
            str(FIXTURES / "test.csv"),
            "--json",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    metrics = json.loads(out)
    assert list(metrics) == KEYS
    assert metrics["accuracy"] >= 12 / 13  # 13 in-scope rows, free speech
    assert metrics["oos_recall"] >= 2 / 3
    assert metrics["in_scope_false_reject"] <= 1 / 13
    assert 0 < metrics["macro_f1"] <= 1
    assert 0 < metrics["p50_ms"] <= metrics["p99_ms"] < 50
    assert metrics["train_s"] >= 0 and metrics["peak_rss_mb"] > 10
    assert 0 <= metrics["p99_cpu_ms"] < 50 and metrics["train_cpu_s"] > 0


def test_eval_without_oos_rows_reports_null_recall(tmp_path, capsys):
    test = tmp_path / "in_scope.csv"
    lines = (FIXTURES / "test.csv").read_text(encoding="utf-8").splitlines()
    test.write_text(
        "\n".join(line for line in lines if not line.endswith(",oos")) + "\n", encoding="utf-8"
    )
    assert (
        _ivr(["nlu", "eval", "--train", str(FIXTURES / "train.csv"), "--test", str(test), "--json"])
        == 0
    )
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["oos_recall"] is None
    assert metrics["accuracy"] >= 12 / 13


def test_eval_threshold_trades_false_rejects_for_oos_recall(capsys):
    base = [
        "nlu",
        "eval",
        "--train",
        str(FIXTURES / "train.csv"),
        "--test",
        str(FIXTURES / "test.csv"),
        "--json",
    ]
    _ivr([*base, "--threshold", "0"])
    loose = json.loads(capsys.readouterr().out)
    _ivr([*base, "--threshold", "1"])
    strict = json.loads(capsys.readouterr().out)
    assert loose["in_scope_false_reject"] == 0.0
    assert strict["oos_recall"] == 1.0 and strict["in_scope_false_reject"] > 0.5


def test_eval_bad_input_exits_2_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("utterance,label\nhello,greet\n", encoding="utf-8")
    assert (
        _ivr(["nlu", "eval", "--train", str(bad), "--test", str(FIXTURES / "test.csv"), "--json"])
        == 2
    )
    assert "bad.csv" in capsys.readouterr().err
    with pytest.raises(SystemExit) as done:  # refused while parsing, before any training
        _ivr(["nlu", "eval", "--train", str(FIXTURES / "train.csv"),
              "--test", str(FIXTURES / "test.csv"), "--threshold", "1.5"])
    assert done.value.code == 2
    assert "--threshold: must be within [0, 1] or 'auto', got 1.5" in capsys.readouterr().err


def test_eval_as_a_command():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ivr.nlu",
            "eval",
            "--train",
            str(FIXTURES / "train.csv"),
            "--test",
            str(FIXTURES / "test.csv"),
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and list(json.loads(lines[0])) == KEYS


def test_try_prints_ranked_intents_per_ask_node(monkeypatch, capsys, tmp_path):
    flow_file = tmp_path / "flow.yaml"
    flow_file.write_text("stand-in", encoding="utf-8")
    recognizers = {
        "main_menu": build_recognizer(
            {
                "card_lost": ["lost card", "my card was stolen"],
                "balance": ["check my balance", "how much money do I have"],
            }
        ),
        "confirm": build_recognizer({"yes": ["yes", "correct"], "no": ["no", "wrong"]}),
    }
    loaded = []

    def load_flow(path):
        loaded.append(str(path))
        return types.SimpleNamespace(recognizers=recognizers)

    monkeypatch.setitem(sys.modules, "ivr.flows", types.SimpleNamespace(load_flow=load_flow))
    assert (
        _ivr(["nlu", "try", str(flow_file), "I lost my card, this is the third time I call"]) == 0
    )
    out = capsys.readouterr().out
    assert loaded == [str(flow_file)]
    main_menu = out.split("main_menu:")[1].split("confirm:")[0].strip().splitlines()
    assert main_menu[0].split()[1] == "card_lost" and float(main_menu[0].split()[0]) >= 0.5
    assert "confirm:" in out
    sentiment = json.loads(out.split("sentiment: ")[1])
    assert sentiment["repeat_caller"] is True

    assert _ivr(["nlu", "try", str(flow_file), "yes", "--node", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_try_reports_flow_errors(monkeypatch, capsys):
    def load_flow(path):
        raise ValueError("line 3: unknown node type 'asc'")

    monkeypatch.setitem(sys.modules, "ivr.flows", types.SimpleNamespace(load_flow=load_flow))
    assert _ivr(["nlu", "try", "broken.yaml", "hello"]) == 2
    err = capsys.readouterr().err
    assert "broken.yaml" in err and "asc" in err


@pytest.mark.skipif(
    not (ROOT.parent / "shared" / "data" / "banking77" / "train.csv").exists(),
    reason="shared Banking77 data not present",
)
def test_banking77_sample_trains_and_ranks(tmp_path):
    """A slice of the real data: recognizer trains fast and answers typed queries."""
    import csv

    from ivr.nlu.classifier import LinearRecognizer

    with (ROOT.parent / "shared" / "data" / "banking77" / "train.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    keep = {
        "card_arrival",
        "lost_or_stolen_card",
        "transaction_charged_twice",
        "pin_blocked",
        "balance_not_updated_after_bank_transfer",
    }
    examples: dict[str, list[str]] = {}
    for r in rows:
        if r["category"] in keep:
            examples.setdefault(r["category"], []).append(r["text"])
    rec = LinearRecognizer(examples)
    assert (
        rec.rank("I was charged twice for the same coffee")[0].intent == "transaction_charged_twice"
    )
    assert rec.rank("um my card still hasn't come in the mail")[0].intent == "card_arrival"
