"""Static word-piece vectors: the packaged table, WordPiece splitting, sentence features."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.nlu import NLUError
from ivr.nlu.classifier import CLOSED_THRESHOLD, OPEN_THRESHOLD, LinearRecognizer
from ivr.nlu.text import NUM, prepare
from ivr.nlu.vectors import VECTORS_FILE, PieceVectors, piece_vectors, word_idf

VEC = piece_vectors()


def _embed(text: str) -> np.ndarray:
    return VEC.embed(prepare(text), {}, 1.0)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_packaged_table_loads_with_minilms_lower_case_pieces():
    assert VECTORS_FILE.is_file()
    assert len(VEC.index) > 25_000 and VEC.dims == 64 and VEC.width == 192
    assert VEC.table.dtype == np.float32 and np.isfinite(VEC.table).all()
    assert {"card", "##ing", "a", "##z"} <= set(VEC.index)


def test_wordpiece_splits_greedily_into_known_pieces():
    names = {i: p for p, i in VEC.index.items()}
    assert [names[i] for i in VEC.pieces("card")] == ["card"]
    split = [names[i] for i in VEC.pieces("unrecognised")]
    assert len(split) > 1 and "".join(s.removeprefix("##") for s in split) == "unrecognised"
    assert all(s.startswith("##") for s in split[1:])
    assert VEC.pieces(NUM) == VEC.pieces("number")
    assert VEC.pieces("x" * 41) == ()  # a pasted blob is not a word


@settings(max_examples=200, deadline=None)
@given(word=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=40))
def test_every_lower_case_word_splits_and_round_trips(word):
    names = {i: p for p, i in VEC.index.items()}
    pieces = [names[i] for i in VEC.pieces(word)]
    assert "".join(p.removeprefix("##") for p in pieces) == word


def test_paraphrases_are_closer_than_other_topics():
    arrived = _embed("my card still hasn't arrived")
    assert _cos(arrived, _embed("the new card never came in the post")) > _cos(
        arrived, _embed("what's the exchange rate for euros")
    )
    stolen = _embed("someone stole my wallet")
    assert _cos(stolen, _embed("my purse was taken")) > _cos(stolen, _embed("top up my account"))


def test_sentence_features_are_unit_length_or_zero():
    v = _embed("I was charged twice for the same coffee")
    assert v.shape == (VEC.width,) and abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    assert not _embed("").any() and not _embed("?!").any()


def test_idf_weights_favour_rare_words():
    idf, unseen = word_idf(["my card", "my pin", "my card is lost"])
    assert idf["my"] < idf["card"] < idf["lost"] <= unseen


def test_a_missing_or_broken_table_names_the_file(tmp_path):
    with pytest.raises(NLUError, match="nope.npz"):
        PieceVectors(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, pieces=np.array(["a"]))
    with pytest.raises(NLUError, match="bad.npz"):
        PieceVectors(bad)


def _large(topics: list[str], n: int = 420) -> dict[str, list[str]]:
    """More than 2,000 examples: a "large" set, with a fitted temperature and no gate."""
    return {t: [f"question {k} about my {t}" for k in range(n)] for t in topics}


def test_recognition_uses_the_vectors_as_training_did():
    """The one-utterance fast path gives the batch transform's row, dense block included."""
    examples = _large(["card arrival", "exchange rate"], 1001)
    examples["card arrival"] += ["my card has not arrived", "when will my card come"]
    examples["exchange rate"] += ["how much is a dollar in pounds"]
    features = LinearRecognizer(examples)._features
    assert features.with_vectors
    for text in ["my card never came", "dollar to euro rate", "hello"]:
        prepared = prepare(text)
        idx, val = features.sparse_one(prepared)
        slow = features.transform([prepared]).toarray()[0]
        fast = np.zeros(features.width, dtype=np.float32)
        fast[idx] = val
        np.testing.assert_allclose(fast, slow, atol=1e-6)
        assert (idx >= features.width - VEC.width).any()


def test_flow_sized_sets_do_without_the_vectors():
    features = LinearRecognizer({"a": ["lost card"], "b": ["check balance"]})._features
    assert not features.with_vectors
    idx, _ = features.sparse_one(prepare("lost card"))
    assert idx.max() < features.width == features.transform(["x"]).shape[1]


def test_large_sets_pick_their_threshold_by_whether_off_topic_examples_exist():
    base = _large(["card", "loan", "pin", "transfer", "refund"])
    assert LinearRecognizer(base).default_threshold == CLOSED_THRESHOLD
    with_oos = dict(base, oos=[f"weather today number {n}" for n in range(50)])
    assert LinearRecognizer(with_oos).default_threshold == OPEN_THRESHOLD


_LARGE_REC = LinearRecognizer(
    dict(_large(["card arrival", "exchange rate", "lost pin"], 700), oos=["weather", "a joke"])
)


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=120), asr=st.one_of(st.none(), st.floats(0, 1)))
def test_a_large_model_ranks_any_text_within_the_contract(text, asr):
    """Any transcript (unicode, digits, blobs, nothing) through the dense block: ranked
    probabilities, never NaN, never the oos class, summing to at most 1."""
    ranked = _LARGE_REC.rank(text, asr_confidence=asr)
    confidences = [s.confidence for s in ranked]
    assert all(0.0 <= c <= 1.0 for c in confidences) and sum(confidences) <= 1.0 + 1e-6
    assert confidences == sorted(confidences, reverse=True)
    assert all(s.intent in _LARGE_REC.intents and s.intent != "oos" for s in ranked)
