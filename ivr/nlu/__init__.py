"""Intent recognition behind one interface.

The flow engine only ever calls :func:`build_recognizer` (at flow load) and
``IntentRecognizer.rank`` (per caller utterance). Whatever model sits behind it,
the contract is: ranked intents, best first, with confidences in [0, 1] that
sum to at most 1. The engine decides "no match" by comparing the best
confidence with the ask node's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence


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


def build_recognizer(examples: Mapping[str, Sequence[str]]) -> IntentRecognizer:
    """Train a recognizer from ``{intent: [example phrases]}``."""
    from ivr.nlu.keyword import KeywordRecognizer

    return KeywordRecognizer(examples)
