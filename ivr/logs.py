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

# E.164 and loosely written North American numbers: +14155550100, (415) 555-0100, 415.555.0100
_PHONE = re.compile(r"(?<![\w])(\+?\d[\d\-\s().]{6,}\d)(?![\w])")
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message", "asctime", "taskName"}


def redact_phone(value: str) -> str:
    """Keep a phone number's last two digits only: '+14155550123' -> '+*********23'."""
    def mask(m: re.Match[str]) -> str:
        text = m.group(1)
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
