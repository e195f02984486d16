"""argparse ``type=`` helpers shared by every ``ivr`` command.

A bad value is refused while the command line is parsed: argparse prints the usage line
and ``argument --flag: <message>`` and exits 2, before any work starts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "e164_phone",
    "int_at_least",
    "iso_time",
    "non_negative_float",
    "non_negative_int",
    "output_dir",
    "output_file",
    "port",
    "positive_float",
    "positive_int",
    "probability",
]

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def _number(text: str, kind: Callable[[str], float]) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def int_at_least(low: int) -> Callable[[str], int]:
    """A whole number ``>= low``."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"int_at_least_{low}"
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """A finite number ``> 0``."""
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number ``>= 0``."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value:g}")
    return value


def probability(text: str) -> float:
    """A share or probability between 0 and 1."""
    value = _number(text, float)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def port(text: str) -> int:
    """A TCP port, 1-65535."""
    value = int(_number(text, int))
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value}")
    return value


def e164_phone(text: str) -> str:
    """A phone number in E.164 form, ``+`` then 7 to 15 digits (``+14155550102``)."""
    compact = re.sub(r"[\s().-]", "", text)
    if not _E164.match(compact):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a phone number in E.164 form, e.g. +14155550102")
    return compact


def iso_time(text: str) -> dt.datetime:
    """An ISO 8601 time; without a UTC offset it is taken as UTC."""
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 time, e.g. 2026-11-23T10:00:00-05:00") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def output_dir(text: str) -> Path:
    """A folder to write into: it may not exist yet (it is created), but must not be a file."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"{parent} is a file, not a folder")
    return path


def output_file(text: str) -> Path:
    """A file to write: not a folder; its folder is created when missing."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    output_dir(str(path.parent))
    return path
