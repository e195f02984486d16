"""Structured logs: one JSON object per line, phone numbers redacted.

Every call-related record carries ``call_id``; the engine's trail becomes one
``step`` record per node decision.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

# Left alone: ISO dates and times, Twilio SIDs (two letters + 32 hex digits) and UUIDs.
_KEEP = (r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
         r"|[A-Z]{2}[0-9a-fA-F]{32}"
         r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Anything else with 7+ digits, wherever it stands (glued to letters, ``_`` or ``%2B``),
# written with or without separators: +14155550100, (415) 555-0100, 415.555.0100.
_NUMBER = r"\(?\d(?:[\d\-\s.()]*\d)?"
_PHONE = re.compile(f"(?P<keep>{_KEEP})|(?P<number>{_NUMBER})")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message", "asctime", "taskName"}


def redact_phone(value: str) -> str:
    """Mask every number of 7 or more digits but its last two: '+14155550123' ->
    '+*********23', 'my_4155550132' -> 'my_********32'; ISO dates, times and SIDs stay."""
    def mask(m: re.Match[str]) -> str:
        text = m.group(0)
        if m.group("keep") is not None:
            return text
        digits = sum(c.isdigit() for c in text)
        if digits < 7:
            return text
        seen = 0
        out = []
        for c in text:
            if c.isdigit():
                seen += 1
                out.append(c if seen > digits - 2 else "*")
            else:
                out.append(c)
        return "".join(out)
    return _PHONE.sub(mask, value)


def redact(value: Any) -> Any:
    """Redact phone numbers anywhere in a JSON-like value."""
    if isinstance(value, str):
        return redact_phone(value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, extras included, phone numbers redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(redact(out), default=str, ensure_ascii=False)


JsonFormatter.converter = __import__("time").gmtime  # type: ignore[assignment]


def configure_logging(level: str = "INFO") -> None:
    """Send this package's logs to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("ivr")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
