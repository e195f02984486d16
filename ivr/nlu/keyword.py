"""A small, dependency-free recognizer: token overlap with example phrases.

Good enough for menus with a handful of intents ("billing", "my card was
stolen"); the trained classifier replaces it for free-form speech.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Mapping, Sequence

from ivr.nlu import IntentScore

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the i i'm im my me to for of and or is it is this that on in at with be "
    "please want would like need can could you about so um uh er hi hello yes".split()
)


def normalize(text: str) -> str:
    """Lower-case, strip accents and punctuation: how ASR text is compared."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in folded if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """Content tokens of an utterance (stop words dropped unless nothing else is left)."""
    words = _TOKEN.findall(normalize(text))
    content = [w for w in words if w not in _STOP]
    return content or words


class KeywordRecognizer:
    """Scores each intent by its best token-overlap with any of its examples."""

    def __init__(self, examples: Mapping[str, Sequence[str]]) -> None:
        self._examples = {
            intent: [frozenset(tokens(e)) for e in phrases if tokens(e)]
            for intent, phrases in examples.items()
        }

    def rank(self, text: str, *, asr_confidence: float | None = None) -> list[IntentScore]:
        said = frozenset(tokens(text))
        if not said:
            return []
        raw: dict[str, float] = {}
        for intent, phrases in self._examples.items():
            best = 0.0
            for phrase in phrases:
                overlap = len(said & phrase)
                if overlap:
                    # Recall of the example's words, lightly penalised by extra words.
                    best = max(best, overlap / len(phrase) * (overlap / len(said)) ** 0.25)
            if best > 0:
                raw[intent] = best
        if not raw:
            return []
        total = sum(raw.values())
        # Share of the evidence, damped by how complete the best match is.
        scale = max(raw.values())
        if asr_confidence is not None:
            scale *= 0.5 + 0.5 * max(0.0, min(1.0, asr_confidence))
        ranked = sorted(raw.items(), key=lambda kv: (-kv[1], kv[0]))
        return [IntentScore(i, round(s / total * scale, 6)) for i, s in ranked]
