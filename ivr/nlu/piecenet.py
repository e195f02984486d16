"""A bag-of-tokens network trained in numpy: the word-piece table, fine-tuned.

The linear SVM sees the MiniLM word-piece vectors (:mod:`ivr.nlu.vectors`) as
frozen features. This model fine-tunes them on the examples, as model2vec's
supervised fine-tuning and fastText do: an utterance is the weighted mean of
its tokens' vectors (its word pieces, whose vectors start from the table, plus
its known words and word bigrams, which start from zero), followed by a linear
softmax layer. Training is Adam with label smoothing and token dropout; only
the rows of the tokens in a batch are updated, so an epoch over Banking77's
9,000 examples takes about half a second of CPU.

Its errors differ from the SVM's, and the two are averaged (see
:class:`ivr.nlu.classifier.LinearRecognizer`): +0.6 points on three Banking77
validation splits (``ivr/nlu/README.md``). Recognition is a dictionary look-up
per token and a (d x intents) product, tens of microseconds; no torch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

from ivr.nlu.vectors import piece_vectors, word_idf

EPOCHS = 15
_MAX_STEPS = 4300  # Banking77's 9,000 examples get all 15 epochs; larger sets fewer
BATCH = 32
LEARNING_RATE = 3e-3
LABEL_SMOOTHING = 0.1
TOKEN_DROPOUT = 0.1
_MIN_BIGRAM = 2  # bigrams seen fewer times get no vector of their own
_ADAM = (0.9, 0.999, 1e-8)


class PieceNet:
    """Mean of token vectors, then softmax; trained on prepared texts."""

    def __init__(
        self,
        prepared: Sequence[str],
        y: np.ndarray,
        n_classes: int,
        *,
        seed: int = 0,
        epochs: int | None = None,
    ) -> None:
        table = piece_vectors()
        self._n_pieces = len(table.index)
        self._idf, self._unseen_idf = word_idf(list(prepared))
        counts: dict[str, int] = {}
        for text in prepared:
            words = text.split()
            for gram in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
                counts[gram] = counts.get(gram, 0) + 1
        # Token ids: word pieces first (the table's ids), then words and bigrams.
        self._vocab: dict[str, int] = {}
        for gram, n in counts.items():
            if " " not in gram or n >= _MIN_BIGRAM:
                self._vocab[gram] = self._n_pieces + len(self._vocab)
        # Pieces start at unit mean length, so that learning rates suit any table.
        self._base_scale = np.float32(1.0 / np.sqrt(np.mean(np.sum(table.table**2, axis=1))))
        flat = [self._tokens(t) for t in prepared]
        ids = np.concatenate([f[0] for f in flat])
        weights = np.concatenate([f[1] for f in flat])
        lens = np.array([len(f[0]) for f in flat], dtype=np.int64)
        # Only the rows of tokens seen in training change; keep just those.
        seen, local = np.unique(ids, return_inverse=True)
        emb = np.zeros((len(seen), table.dims), dtype=np.float32)
        is_piece = seen < self._n_pieces
        emb[is_piece] = table.table[seen[is_piece]] * self._base_scale
        # Row of each token id in the kept embedding (-1: no example had it).
        self._row_of = np.full(self._n_pieces + len(self._vocab), -1, dtype=np.int64)
        self._row_of[seen] = np.arange(len(seen))
        if epochs is None:  # training time stays bounded: at most ~4,300 batches
            epochs = max(3, min(EPOCHS, _MAX_STEPS * BATCH // max(1, len(lens))))
        self._emb, self._w, self._b = _train(
            emb, local.astype(np.int64), weights, lens, y, n_classes, seed, epochs
        )

    def _tokens(self, prepared: str) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and weights (IDF; a word's pieces share its weight); never empty."""
        table = piece_vectors()
        ids: list[int] = []
        weights: list[float] = []
        words = prepared.split()
        for word in words:
            idf = self._idf.get(word, self._unseen_idf)
            pieces = table.pieces(word)
            ids.extend(pieces)
            weights.extend([idf / len(pieces)] * len(pieces))
            j = self._vocab.get(word)
            if j is not None:
                ids.append(j)
                weights.append(idf)
        for a, b in zip(words, words[1:], strict=False):
            j = self._vocab.get(f"{a} {b}")
            if j is not None:
                ids.append(j)
                weights.append(1.0)
        if not ids:
            return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.float32)
        return np.asarray(ids, dtype=np.int64), np.asarray(weights, dtype=np.float32)

    def probabilities(self, prepared: str) -> np.ndarray:
        """Softmax over the classes for one prepared utterance (uniform if nothing is known)."""
        ids, weights = self._tokens(prepared)
        # Vectorised look-up: a Python loop over the tokens cost ~0.05 ms per utterance.
        where = self._row_of[ids]
        rows = self._emb[where]  # rows of unseen tokens are fixed below
        unseen = where < 0
        if unseen.any():
            pieces = unseen & (ids < self._n_pieces)  # a word piece no example had: the table's
            if pieces.any():
                rows[pieces] = piece_vectors().table[ids[pieces]] * self._base_scale
            weights = np.where(unseen & ~pieces, np.float32(0.0), weights)
        total = float(weights.sum())
        h = (weights @ rows) / total if total > 0 else np.zeros(rows.shape[1], np.float32)
        logits = (h @ self._w + self._b).astype(np.float64)
        logits -= logits.max()
        p = np.exp(logits)
        return p / p.sum()


def _pool(
    emb: np.ndarray, ids: np.ndarray, weights: np.ndarray, lens: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means of consecutive runs of token rows; also the normalised weights."""
    starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
    sums = np.add.reduceat(weights, starts)
    sums[sums == 0] = 1.0
    norm = weights / np.repeat(sums, lens)
    return np.add.reduceat(norm[:, None] * emb[ids], starts, axis=0), norm


def _train(
    emb: np.ndarray,
    ids: np.ndarray,
    weights: np.ndarray,
    lens: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    seed: int,
    epochs: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Adam (lazy for the token rows), linearly decayed, with label smoothing and token dropout."""
    rng = np.random.default_rng(seed)
    d = emb.shape[1]
    w = (rng.standard_normal((d, n_classes)) / np.sqrt(d)).astype(np.float32)
    b = np.zeros(n_classes, dtype=np.float32)
    moments = {name: (np.zeros_like(a), np.zeros_like(a)) for name, a in (("w", w), ("b", b))}
    m_emb, v_emb = np.zeros_like(emb), np.zeros_like(emb)
    beta1, beta2, eps = _ADAM
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]])
    n = len(lens)
    steps = epochs * ((n + BATCH - 1) // BATCH)
    t = 0
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, BATCH):
            idx = order[start : start + BATCH]
            size, ln = len(idx), lens[idx]
            ends = np.cumsum(ln)
            pos = np.arange(ends[-1]) - np.repeat(ends - ln, ln) + np.repeat(offsets[idx], ln)
            tok, wt = ids[pos], weights[pos] * (rng.random(len(pos)) >= TOKEN_DROPOUT)
            h, norm = _pool(emb, tok, wt, ln)
            logits = h @ w + b
            logits -= logits.max(axis=1, keepdims=True)
            grad = np.exp(logits)
            grad /= grad.sum(axis=1, keepdims=True)
            grad[np.arange(size), y[idx]] -= 1.0 - LABEL_SMOOTHING
            grad -= LABEL_SMOOTHING / n_classes
            grad /= size
            grads = {"w": h.T @ grad, "b": grad.sum(axis=0)}
            grad_h = grad @ w.T
            t += 1
            rate = LEARNING_RATE * (1 - (t - 1) / steps)
            rate *= np.sqrt(1 - beta2**t) / (1 - beta1**t)
            for name, param in (("w", w), ("b", b)):
                m, v = moments[name]
                g = grads[name]
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                param -= rate * m / (np.sqrt(v) + eps)
            rows, inverse = np.unique(tok, return_inverse=True)
            scatter = sp.csr_matrix(
                (norm, (inverse, np.repeat(np.arange(size), ln))), shape=(len(rows), size)
            )
            g_rows = scatter @ grad_h
            m_rows = beta1 * m_emb[rows] + (1 - beta1) * g_rows
            v_rows = beta2 * v_emb[rows] + (1 - beta2) * g_rows * g_rows
            m_emb[rows], v_emb[rows] = m_rows, v_rows
            emb[rows] -= rate * m_rows / (np.sqrt(v_rows) + eps)
    return emb, w, b
