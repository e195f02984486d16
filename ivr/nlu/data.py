"""Reading ``text,category`` training/test files."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Iterable

from ivr.nlu import NLUError
from routing.textfile import NotUTF8Error, open_utf8_text


def read_labelled_csv(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Rows ``(text, category)`` of a CSV with a ``text,category`` header.

    Extra columns are ignored; blank lines are skipped. Raises :class:`NLUError`
    naming the file (and line) when the file is missing, has no such header, or
    a row has an empty text or category.
    """
    p = Path(path)
    try:
        handle = open_utf8_text(p)
    except OSError as exc:
        raise NLUError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    except NotUTF8Error as exc:
        raise NLUError(str(exc)) from None
    rows: list[tuple[str, str]] = []
    with handle:
        reader = csv.DictReader(handle)
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "text" not in fields or "category" not in fields:
            raise NLUError(
                f"{p}: expected a header with columns 'text' and 'category', "
                f"got {reader.fieldnames}"
            )
        reader.fieldnames = fields
        try:
            for row in reader:
                text, category = (
                    (row.get("text") or "").strip(),
                    (row.get("category") or "").strip(),
                )
                if not text and not category:
                    continue
                if not text or not category:
                    field = "text" if not text else "category"
                    raise NLUError(f"{p}:{reader.line_num}: empty {field!r}")
                rows.append((text, category))
        except csv.Error as exc:
            raise NLUError(f"{p}:{reader.line_num}: {exc}") from exc
    if not rows:
        raise NLUError(f"{p}: no data rows")
    return rows


def examples_from_rows(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Group ``(text, category)`` rows into ``{category: [texts]}``."""
    out: dict[str, list[str]] = {}
    for text, category in rows:
        out.setdefault(category, []).append(text)
    return out
