"""The static sentence student distilled from MiniLM: packaged table, tokens, vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.nlu import NLUError
from ivr.nlu.student import STUDENT_FILE, StudentVectors, student_vectors
from ivr.nlu.text import prepare
from ivr.nlu.vectors import piece_vectors

STUDENT = student_vectors()


def _embed(text: str) -> np.ndarray:
    return STUDENT.embed(prepare(text))


def test_the_packaged_student_loads_with_the_piece_tables_pieces():
    assert STUDENT_FILE.is_file() and STUDENT_FILE.stat().st_size < 20_000_000
    assert STUDENT.table.dtype == np.float16 and np.isfinite(STUDENT.table).all()
    assert STUDENT.vocab.piece_index == piece_vectors().index
    assert "top up" in STUDENT.vocab.bigram_index and STUDENT.dims == 128


def test_tokens_are_pieces_words_and_bigrams_with_positive_weights():
    ids, weights = STUDENT.vocab.tokens(prepare("my card has not arrived yet"))
    assert ids and len(ids) == len(weights) and min(weights) > 0
    assert max(ids) < STUDENT.vocab.size
    assert STUDENT.vocab.tokens("") == ([], [])


def test_paraphrases_are_closer_than_other_topics():
    def cos(a: str, b: str) -> float:
        return float(_embed(a) @ _embed(b))

    assert cos("my card still hasn't arrived", "the new card never came in the post") > cos(
        "my card still hasn't arrived", "what's the exchange rate for euros"
    )
    assert cos("someone stole my wallet", "my purse was taken") > cos(
        "someone stole my wallet", "top up my account"
    )


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=80))
def test_any_transcript_gets_a_unit_vector_or_zeros(text):
    v = _embed(text)
    assert v.shape == (STUDENT.dims,) and np.isfinite(v).all()
    norm = float(np.linalg.norm(v))
    assert norm == 0.0 or abs(norm - 1.0) < 1e-4


def test_a_missing_or_broken_file_is_an_error_naming_it(tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(NLUError, match="nope.npz"):
        StudentVectors(missing)
    broken = tmp_path / "broken.npz"
    np.savez(broken, pieces=np.array(["a"]))
    with pytest.raises(NLUError, match="broken.npz"):
        StudentVectors(broken)
