"""The optional embeddings backend: selection, fallback without the extra, and (when
torch and the MiniLM package are installed) the recognizer itself on small data."""

from __future__ import annotations

import argparse
import json
import logging
import pickle
from pathlib import Path

import pytest
import yaml

from ivr.nlu import (
    DEFAULT_THRESHOLD,
    NLUError,
    build_recognizer,
    build_recognizer_from_csv,
    embeddings,
)
from ivr.nlu import cache as nlu_cache
from ivr.nlu import cli as nlu_cli
from ivr.nlu.classifier import LinearRecognizer
from ivr.nlu.data import examples_from_rows, read_labelled_csv

FIXTURES = Path(__file__).parent / "fixtures" / "nlu"
FLOW = yaml.safe_load((FIXTURES / "flow_intents.yaml").read_text(encoding="utf-8"))["nodes"]
TINY = {
    "card_lost": ["lost card", "my card was stolen"],
    "balance": ["check my balance", "how much money do I have"],
    "agent": ["agent", "talk to a person"],
}


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(nlu_cache.BACKEND_ENV, raising=False)
    nlu_cache.clear_memory()
    nlu_cache._warned.clear()
    yield
    nlu_cache.clear_memory()


@pytest.fixture
def no_extra(monkeypatch):
    monkeypatch.setattr(embeddings, "missing", lambda: "No module named 'torch' (install it)")


def _ivr(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivr")
    nlu_cli.add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --- selection and fallback: no torch needed -------------------------------------------


def test_linear_is_the_default_backend():
    assert nlu_cache.resolve_backend() == "linear"
    assert isinstance(build_recognizer(TINY), LinearRecognizer)


def test_missing_extra_falls_back_to_linear_with_one_warning(no_extra, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="ivr.nlu.cache")
    rec = build_recognizer(TINY, backend="embeddings")
    assert isinstance(rec, LinearRecognizer)
    assert rec.rank("I lost my card")[0].intent == "card_lost"
    monkeypatch.setenv(nlu_cache.BACKEND_ENV, "embeddings")
    assert isinstance(build_recognizer({"a": ["lost card"], "b": ["balance"]}), LinearRecognizer)
    warnings = [r.getMessage() for r in caplog.records if "embeddings" in r.getMessage()]
    assert len(warnings) == 1 and "torch" in warnings[0] and "linear" in warnings[0]


def test_fallback_shares_the_linear_cache_entry(no_extra):
    assert build_recognizer(TINY, backend="embeddings") is build_recognizer(TINY)


def test_unknown_backend(monkeypatch, caplog):
    with pytest.raises(NLUError, match="unknown NLU backend 'bert'"):
        build_recognizer(TINY, backend="bert")
    monkeypatch.setenv(nlu_cache.BACKEND_ENV, "bert")
    caplog.set_level(logging.WARNING, logger="ivr.nlu.cache")
    assert isinstance(build_recognizer(TINY), LinearRecognizer)
    assert any("IVR_NLU_BACKEND='bert'" in r.getMessage() for r in caplog.records)


def test_csv_builder_takes_a_backend(no_extra):
    rec = build_recognizer_from_csv(FIXTURES / "train.csv", backend="embeddings")
    assert isinstance(rec, LinearRecognizer)


def test_eval_with_a_missing_extra_is_an_error_not_a_fallback(no_extra, capsys):
    argv = ["nlu", "eval", "--train", str(FIXTURES / "train.csv")]
    argv += ["--test", str(FIXTURES / "test.csv"), "--json", "--backend", "embeddings"]
    assert _ivr(argv) == 2
    assert "embeddings" in capsys.readouterr().err


def test_eval_several_thresholds_from_one_training(capsys):
    argv = ["nlu", "eval", "--train", str(FIXTURES / "train.csv")]
    argv += ["--test", str(FIXTURES / "test.csv"), "--json", "--threshold", "auto", "0", "1"]
    assert _ivr(argv) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["threshold"] for x in lines] == ["auto", 0.0, 1.0]
    assert lines[1]["in_scope_false_reject"] == 0.0
    assert lines[2]["oos_recall"] == 1.0
    assert len({x["train_s"] for x in lines}) == 1  # one training


def test_importing_the_backend_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, ivr.nlu.cache, ivr.nlu.embeddings; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# --- the backend itself: needs the extra ------------------------------------------------

needs_extra = pytest.mark.skipif(
    embeddings.missing() is not None,
    reason=f"embeddings extra not installed: {embeddings.missing()}",
)


@needs_extra
def test_frozen_encoder_on_a_tiny_flow():
    rec = build_recognizer(TINY, backend="embeddings")
    assert isinstance(rec, embeddings.EmbeddingRecognizer) and not rec.fine_tuned
    for said, want in [
        ("I lost my card", "card_lost"),
        ("Um, somebody stole my card!", "card_lost"),
        ("how much money is in my account", "balance"),
        ("can I talk to a real person", "agent"),
    ]:
        ranked = rec.rank(said)
        assert ranked[0].intent == want, (said, ranked)
        assert ranked[0].confidence >= DEFAULT_THRESHOLD, (said, ranked)
        assert sum(s.confidence for s in ranked) <= 1.0 + 1e-6
    for said in ["what's the weather in Boston", "", "um uh"]:
        ranked = rec.rank(said)
        assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)
    # A paraphrase sharing no content word: the linear model judges it on word-piece
    # meaning (tests/test_nlu_recognizer.py); the encoder reaches it too.
    assert rec.rank("I need to speak with someone")[0].intent == "agent"
    low = rec.rank("I lost my card", asr_confidence=0.1)
    assert low[0].confidence < DEFAULT_THRESHOLD


@needs_extra
@pytest.mark.parametrize("node", sorted(FLOW))
def test_example_flow_nodes(node):
    spec = FLOW[node]
    rec = build_recognizer(spec["intents"], backend="embeddings")
    for said, want in spec["said"]:
        ranked = rec.rank(said)
        assert ranked and ranked[0].intent == want, (said, ranked)
        assert ranked[0].confidence >= DEFAULT_THRESHOLD, (said, ranked)
    for said in spec["out_of_scope"]:
        ranked = rec.rank(said)
        assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)


@needs_extra
def test_env_var_selects_the_backend_and_the_cache_keeps_it(tmp_path, monkeypatch):
    monkeypatch.setenv(nlu_cache.BACKEND_ENV, "embeddings")
    rec = build_recognizer(TINY)
    assert isinstance(rec, embeddings.EmbeddingRecognizer)
    assert build_recognizer(TINY) is rec
    linear = build_recognizer(TINY, backend="linear")
    assert isinstance(linear, LinearRecognizer)
    files = sorted((tmp_path / "cache" / "nlu").glob("*.pkl"))
    assert len(files) == 2
    nlu_cache.clear_memory()
    again = build_recognizer(TINY)
    assert again is not rec and again.rank("I lost my card") == rec.rank("I lost my card")


@needs_extra
def test_fine_tuned_encoder_round_trips_through_pickle():
    rows = examples_from_rows(read_labelled_csv(FIXTURES / "train.csv"))
    rec = embeddings.EmbeddingRecognizer(rows, fine_tune=True, epochs=1)
    assert rec.fine_tuned and "oos" not in rec.intents
    said = "I forgot my pin number"
    ranked = rec.rank(said)
    assert ranked and all(s.intent != "oos" for s in ranked)
    blob = pickle.dumps(rec)
    assert len(blob) < 60e6  # the trained layers only, not the word embeddings
    assert pickle.loads(blob).rank(said) == ranked
