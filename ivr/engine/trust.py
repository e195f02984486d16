"""How far the IVR trusts who the caller says they are. Caller ID can be spoofed, so
matching it is only ``recognised``; ``verified`` needs a knowledge check or a one-time
code the flow ran (it sets ``verified: true``). Agents are told which level was reached."""

from __future__ import annotations

from typing import Any, Mapping

#: Levels from least to most trusted.
LEVELS = ("anonymous", "recognised", "verified")
#: What the agent hears in the whisper for each level.
WHISPER = {
    "anonymous": "Identity not checked.",
    "recognised": "Recognised by caller ID only, not verified.",
    "verified": "Identity verified.",
}


def trust_level(data: Mapping[str, Any]) -> str:
    """``verified`` after a passed check, ``recognised`` when only caller ID matched a
    customer, else ``anonymous``."""
    if data.get("verified") is True:
        return "verified"
    if data.get("identified_by") == "caller_id":
        return "recognised"
    return "anonymous"


def at_least(data: Mapping[str, Any], level: str) -> bool:
    return LEVELS.index(trust_level(data)) >= LEVELS.index(level)
