"""Customer data sources for ``lookup`` nodes: a CSV file or a SQLite table.

CSV files are read once at flow load (they are small demo or export files);
SQLite tables are queried read-only per lookup, so a real customer table can
be large and change under a running server.
"""

from __future__ import annotations

import csv
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ivr.flows.models import DataSource

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def normalize_key(value: Any) -> str:
    """Lookup keys compare on digits only for phone-like values, else stripped text:
    '+1 (415) 555-0100' and '14155550100' are the same caller."""
    text = str(value).strip()
    digits = re.sub(r"[^0-9]", "", text)
    if digits and re.fullmatch(r"[+0-9 ().\-]+", text):
        return digits
    return text.casefold()


@dataclass(frozen=True)
class Directory:
    """Looks records up by key in the flow's named data sources."""

    csv_tables: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)
    sqlite_tables: Mapping[str, tuple[Path, str, str]] = field(default_factory=dict)

    def lookup(self, source: str, key: Any) -> dict[str, Any] | None:
        """The record whose key column equals ``key``, or None."""
        if key is None or key == "":
            return None
        wanted = normalize_key(key)
        if source in self.csv_tables:
            row = self.csv_tables[source].get(wanted)
            return dict(row) if row is not None else None
        path, table, column = self.sqlite_tables[source]
        uri = f"file:{path}?mode=ro"
        # The stored key may be written as the caller id is, or digits only: try both forms,
        # each an indexed equality look-up.
        forms = sorted({str(key).strip(), wanted, "+" + wanted})
        marks = ",".join("?" * len(forms))
        conn = sqlite3.connect(uri, uri=True, timeout=2.0)
        try:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                f'SELECT * FROM "{table}" WHERE "{column}" IN ({marks}) LIMIT 1', forms
            ).fetchone()
        finally:
            conn.close()
        return dict(row) if row is not None else None


def inside(base: Path, name: str) -> bool:
    """Whether the file ``name``, relative to ``base``, stays inside ``base``."""
    try:
        (base / name).resolve().relative_to(base.resolve())
    except ValueError:
        return False
    return True


def load_directory(sources: Mapping[str, DataSource], base: Path) -> tuple[Directory, list[str]]:
    """Open every source; problems name the source and the fix."""
    problems: list[str] = []
    csv_tables: dict[str, dict[str, dict[str, str]]] = {}
    sqlite_tables: dict[str, tuple[Path, str, str]] = {}
    for name, src in sources.items():
        where = f"sources.{name}"
        name_given = src.csv if src.csv is not None else src.sqlite
        if name_given is not None and not inside(base, name_given):
            field_name = "csv" if src.csv is not None else "sqlite"
            problems.append(f"{where}.{field_name}: {name_given} is outside the flows folder")
            continue
        if src.csv is not None:
            path = (base / src.csv).resolve()
            try:
                with path.open(newline="", encoding="utf-8") as fh:
                    reader = csv.DictReader(fh)
                    if src.key_column not in (reader.fieldnames or []):
                        problems.append(f"{where}.key_column: '{src.key_column}' is not a column "
                                        f"of {src.csv} (columns: {reader.fieldnames})")
                        continue
                    csv_tables[name] = {normalize_key(r[src.key_column]): r for r in reader}
            except OSError as exc:
                problems.append(f"{where}.csv: cannot read {src.csv}: {exc.strerror}")
        else:
            assert src.sqlite is not None and src.table is not None
            path = (base / src.sqlite).resolve()
            if not _IDENT.match(src.table) or not _IDENT.match(src.key_column):
                problems.append(f"{where}: table and key_column must be plain SQL names")
                continue
            if not path.is_file():
                problems.append(f"{where}.sqlite: no such file {src.sqlite}")
                continue
            try:
                conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
                try:
                    cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{src.table}")')]
                finally:
                    conn.close()
            except sqlite3.Error as exc:
                problems.append(f"{where}.sqlite: cannot open {src.sqlite}: {exc}")
                continue
            if not cols:
                problems.append(f"{where}.table: no table '{src.table}' in {src.sqlite}")
            elif src.key_column not in cols:
                problems.append(f"{where}.key_column: '{src.key_column}' is not a column of "
                                f"table '{src.table}' (columns: {cols})")
            else:
                sqlite_tables[name] = (path, src.table, src.key_column)
    return Directory(csv_tables, sqlite_tables), problems
