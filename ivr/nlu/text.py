"""Text clean-up shared by training and recognition.

Caller speech arrives as an ASR transcript: any case, stray punctuation, numbers
as digits or words, fillers ("um", "you know"), contractions and the odd slip.
:func:`prepare` maps all of that onto one plain form; the analyzers turn the
prepared text into the features the classifier sees.
"""

from __future__ import annotations

import re
import unicodedata

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
_NOT = re.compile(
    r"\b(can|won|don|doesn|didn|isn|aren|wasn|weren|haven|hasn|hadn|shouldn|"
    r"wouldn|couldn|ain)'?t\b"
)
_BARE = re.compile(r"\b(im|ive|youre|theyre|thats|whats|theres)\b")
_BARE_EXPANDED = {
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "theyre": "they are",
    "thats": "that s",
    "whats": "what s",
    "theres": "there s",
}
_NOT_STEM = {"can": "can", "won": "will", "ain": "is"}
_CONTRACTION = re.compile(r"'(s|m|re|ve|ll|d)\b")
_CONTRACTED = {"s": " s", "m": " am", "re": " are", "ve": " have", "ll": " will", "d": " would"}
_WORD = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*|[$\u00a3\u20ac%]")
_CURRENCY = {"$": "dollar", "\u00a3": "pound", "\u20ac": "euro", "%": "percent"}
_FILLERS = frozenset("um umm uh uhh uhm er erm ah ahh hmm hm mm eh".split())
_FILLER_PHRASES = re.compile(r"\b(you know|i mean|kind of|sort of)\b")
_UH_HUH = re.compile(r"\b(uh[- ]?huh|mm[- ]?hmm|mhm)\b")
NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred thousand million".split()
)
NUM = "NUM"
# Spoken variants that mean the same thing in any flow.
_SAME = {
    "yep": "yes",
    "yup": "yes",
    "yeah": "yes",
    "yea": "yes",
    "ya": "yes",
    "uhhuh": "yes",
    "nope": "no",
    "nah": "no",
    "okay": "ok",
    "k": "ok",
}
# Words too common to say anything on their own; still used in n-grams.
STOP = frozenset(
    "a an the i my me to for of and or is it this that on in at with be do does did can could "
    "would will you your am are was were s have has had so just".split()
)
# Also ignored when judging resemblance (common in requests, say nothing of the topic).
GATE_STOP = frozenset(
    "want like need please help what how why when where who which there here about some any get "
    "got know think not no yes hi hello hey thank thanks ok okay well oh um uh NUM".split()
)
_SUFFIXES = ("ing", "ed", "es", "s", "ly")


def _expand_not(match: re.Match[str]) -> str:
    base = match.group(1)
    return _NOT_STEM.get(base, base[:-1]) + " not"


def prepare(text: str) -> str:
    """Normalise one utterance: case, accents, apostrophes, contractions, fillers, numbers."""
    folded = unicodedata.normalize("NFKD", text.casefold().translate(_APOSTROPHES))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    folded = _NOT.sub(_expand_not, folded)
    folded = _CONTRACTION.sub(lambda m: _CONTRACTED[m.group(1)], folded)
    folded = _BARE.sub(lambda m: _BARE_EXPANDED[m.group(1)], folded)
    folded = _UH_HUH.sub(" yes ", folded)
    folded = _FILLER_PHRASES.sub(" ", folded)
    out: list[str] = []
    for word in _WORD.findall(folded):
        if word in _FILLERS:
            continue
        if word[0].isdigit() or word in NUMBER_WORDS:
            if not out or out[-1] != NUM:  # "twenty five" is one number
                out.append(NUM)
            continue
        out.append(_CURRENCY.get(word) or _SAME.get(word, word))
    return " ".join(out)


def stem(word: str) -> str:
    """A deliberately light suffix stripper (charged/charges/charging -> charg)."""
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def stems(prepared: str) -> list[str]:
    """Stemmed tokens of a prepared utterance."""
    return [stem(w) for w in prepared.split()]


def word_features(prepared: str) -> list[str]:
    """Stemmed unigrams and bigrams."""
    words = stems(prepared)
    return words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]


def pair_features(prepared: str) -> list[str]:
    """Unordered pairs of content words: "card ... never arrived" -> "arriv|card"."""
    content = sorted({w for w in stems(prepared) if w not in STOP})
    return [f"{a}|{b}" for i, a in enumerate(content) for b in content[i + 1 :]]


def content_words(prepared: str) -> list[str]:
    """Stemmed content words (stop words dropped unless nothing else is left)."""
    words = stems(prepared)
    content = [w for w in words if w not in STOP]
    return content or words


def gate_features(prepared: str) -> list[str]:
    """What "resembles an example" is judged on: content words and their first 4 letters.

    Function words are left out so that "I want to order a pizza" does not
    resemble "I want to send money". The word-initial grams absorb ASR and typing
    slips ("chargd", "cofee") without letting "called" resemble "all".
    """
    words = [w for w in stems(prepared) if w not in STOP and w not in GATE_STOP]
    grams = list(words)
    for w in words:
        if len(w) > 4:
            grams.append(f" {w[:4]}")
    return grams
