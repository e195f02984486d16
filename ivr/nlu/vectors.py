"""Static word-piece vectors: what words mean, for the default (torch-free) model.

TF-IDF features only know the words of the examples: "my card has not shown up"
shares little with "card never arrived". Vectors distilled from a sentence
encoder (``scripts/distill_vectors.py``: every lower-case MiniLM word piece
encoded alone, 64 dimensions, int8) put such paraphrases close together, and
cost a dictionary look-up per word. On three Banking77 validation splits they
add 0.73 points to the linear model (``ivr/nlu/README.md``).

A prepared utterance becomes three unit vectors, concatenated and scaled to unit
length: the IDF-weighted mean of its pieces' vectors, and their element-wise max
and min ("power means", which keep what a plain mean washes out).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Mapping

import numpy as np

from ivr.nlu import NLUError
from ivr.nlu.text import GATE_STOP, NUM, STOP

VECTORS_FILE = Path(__file__).with_name("data") / "minilm_pieces.npz"
_MAX_WORD = 40  # longer "words" are noise (a pasted URL); WordPiece itself stops at 100


class PieceVectors:
    """The word-piece table and MiniLM's greedy longest-match WordPiece split."""

    def __init__(self, path: Path = VECTORS_FILE) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                pieces = [str(p) for p in data["pieces"]]
                table = data["vectors"].astype(np.float32) * data["scale"][:, None]
        except (OSError, KeyError, ValueError) as exc:
            raise NLUError(f"{path}: cannot load the word-piece vectors ({exc})") from exc
        self.index = {p: i for i, p in enumerate(pieces)}
        self.table = table
        self.dims = int(table.shape[1])
        self.width = 3 * self.dims
        self._word_cache = functools.lru_cache(maxsize=65536)(self._split)

    def _split(self, word: str) -> tuple[int, ...]:
        """Piece ids of one word ("unrecognised" -> un ##re ##co ...); () if it cannot split."""
        return wordpiece_split(word, self.index)

    def pieces(self, word: str) -> tuple[int, ...]:
        """Cached :meth:`_split` (words repeat across utterances)."""
        return self._word_cache(word)

    def embed(self, prepared: str, idf: Mapping[str, float], default_idf: float) -> np.ndarray:
        """The ``3 * dims`` feature vector of a prepared utterance (zeros if no word splits)."""
        rows: list[int] = []
        weights: list[float] = []
        for word in prepared.split():
            ids = self.pieces(word)
            rows.extend(ids)
            weights.extend([idf.get(word, default_idf)] * len(ids))
        out = np.zeros(self.width, dtype=np.float32)
        if not rows:
            return out
        vecs = self.table[rows]
        w = np.asarray(weights, dtype=np.float32)
        for k, part in enumerate((w @ vecs, vecs.max(axis=0), vecs.min(axis=0))):
            norm = float(np.sqrt(np.dot(part, part)))
            if norm > 0:
                out[k * self.dims : (k + 1) * self.dims] = part / norm
        return out / np.float32(np.sqrt(3.0))

    def content_vector(self, prepared: str) -> np.ndarray:
        """Unit mean vector of the pieces of an utterance's content words (zeros if none).

        What "means the same" is judged on for flow-sized example sets: "I need to
        speak with someone" sits at cosine 0.74 from "talk to a person", "tell me
        a joke" at 0.45 from the closest of a banking menu's examples.
        """
        ids: list[int] = []
        for word in prepared.split():
            if word not in STOP and word not in GATE_STOP:
                ids.extend(self.pieces(word))
        if not ids:
            return np.zeros(self.dims, dtype=np.float32)
        mean = self.table[ids].mean(axis=0)
        return mean / np.float32(max(float(np.sqrt(np.dot(mean, mean))), 1e-9))


def wordpiece_split(word: str, index: Mapping[str, int]) -> tuple[int, ...]:
    """MiniLM's greedy longest-match WordPiece split of one prepared word into the ids
    of ``index`` (``NUM`` reads as "number"); () if the word cannot be split."""
    if word == NUM:
        word = "number"
    if len(word) > _MAX_WORD:
        return ()
    out: list[int] = []
    start = 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            j = index.get(piece)
            if j is not None:
                out.append(j)
                break
            end -= 1
        else:
            return ()
        start = end
    return tuple(out)


_shared: PieceVectors | None = None
_shared_lock = threading.Lock()


def piece_vectors() -> PieceVectors:
    """The packaged table, loaded once per process (7 MB as float32)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = PieceVectors()
        return _shared


def word_idf(prepared_texts: list[str]) -> tuple[dict[str, float], float]:
    """Smoothed IDF of each word of the training texts, and the value for unseen words."""
    df: dict[str, int] = {}
    for text in prepared_texts:
        for word in set(text.split()):
            df[word] = df.get(word, 0) + 1
    n = len(prepared_texts)
    idf = {w: float(np.log((1 + n) / (1 + c)) + 1.0) for w, c in df.items()}
    return idf, float(np.log(1 + n) + 1.0)
