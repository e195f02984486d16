"""Intent recognition behind one interface.

The flow engine only ever calls :func:`build_recognizer` (at flow load) and
``IntentRecognizer.rank`` (per caller utterance). Whatever model sits behind it,
the contract is: ranked intents, best first, with confidences in [0, 1] that
sum to at most 1. The engine decides "no match" by comparing the best
confidence with the ask node's threshold (:data:`DEFAULT_THRESHOLD` unless the
node says otherwise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence

DEFAULT_THRESHOLD = 0.5
"""Confidence below which an answer is "no match"; the calibration supports it (see README)."""


class NLUError(ValueError):
    """Bad intent examples, training data or model cache (the message names file/field)."""


@dataclass(frozen=True, slots=True)
class IntentScore:
    """One candidate intent for an utterance."""

    intent: str
    confidence: float


class IntentRecognizer(Protocol):
    """Ranks the intents an utterance may express."""

    def rank(self, text: str, *, asr_confidence: float | None = None) -> list[IntentScore]:
        """Return candidate intents, best first (may be empty)."""
        ...


def build_recognizer(
    examples: Mapping[str, Sequence[str]], *, backend: str | None = None
) -> IntentRecognizer:
    """Train (or fetch from cache) a recognizer from ``{intent: [example phrases]}``.

    Examples under the intent ``oos`` are out-of-scope utterances: they teach the
    model what "none of these" sounds like and are never returned.

    ``backend``: ``"linear"`` (default) or ``"embeddings"`` (the optional MiniLM
    extra); ``None`` reads ``$IVR_NLU_BACKEND``. Without the extra installed,
    ``embeddings`` falls back to ``linear`` with a logged warning.
    """
    from ivr.nlu.cache import cached_recognizer

    return cached_recognizer(examples, backend)  # type: ignore[return-value]


def build_recognizer_from_csv(
    path: str | os.PathLike[str], *, backend: str | None = None
) -> IntentRecognizer:
    """Train a recognizer from a ``text,category`` CSV file (header required)."""
    from ivr.nlu.data import examples_from_rows, read_labelled_csv

    return build_recognizer(examples_from_rows(read_labelled_csv(path)), backend=backend)


__all__ = [
    "DEFAULT_THRESHOLD",
    "IntentRecognizer",
    "IntentScore",
    "NLUError",
    "build_recognizer",
    "build_recognizer_from_csv",
]
