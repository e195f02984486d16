"""Digits a caller enters or says: reading them from a transcript and validating them."""

from __future__ import annotations

import datetime as dt
import re

from ivr.flows.models import CollectNode
from ivr.nlu.keyword import normalize

_WORD_DIGITS = {"zero": "0", "oh": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                "for": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
                "to": "2", "too": "2"}


def spoken_digits(text: str) -> str:
    """Digits in a transcript: '4 1 5', 'four one five' and '415' all give '415'."""
    out = []
    for word in re.findall(r"[a-z]+|[0-9]+", normalize(text)):
        if word.isdigit():
            out.append(word)
        elif word in _WORD_DIGITS:
            out.append(_WORD_DIGITS[word])
    return "".join(out)


def invalid_digits(value: str, node: CollectNode) -> str | None:
    """Why ``value`` is not an acceptable entry for the collect node, or None."""
    if not value.isdigit():
        return "not digits"
    if not node.min_digits <= len(value) <= node.max_digits:
        return f"{len(value)} digits, want {node.min_digits}-{node.max_digits}"
    if node.validate_as == "luhn" and not luhn_ok(value):
        return "check digit wrong"
    if node.validate_as.startswith("date_"):
        if len(value) != 8:
            return "a date needs 8 digits"
        mm, dd = (value[:2], value[2:4]) if node.validate_as == "date_mmddyyyy" else (
            value[2:4], value[:2])
        try:
            dt.date(int(value[4:]), int(mm), int(dd))
        except ValueError:
            return "not a real date"
    return None


def luhn_ok(value: str) -> bool:
    """The Luhn check digit (card and many account numbers) is right."""
    total = 0
    for k, ch in enumerate(reversed(value)):
        d = int(ch)
        if k % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0
