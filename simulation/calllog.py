"""The call-log format planners bring from their ACD: reading, checking, writing, its schema.

One CSV row per call. Default column names (``--columns`` maps other exports onto them)::

    arrival_time     ISO 8601 with offset (2026-03-02T09:15:04+01:00) or epoch seconds  required
    queue            queue name (or ``intent``, or ``skills`` as ``a;b``)                   required
    ivr_seconds      seconds in the IVR before queueing                                     optional
    queued_at        when the call joined the queue (default: arrival + ivr_seconds)        optional
    answered_at      when an agent answered; empty if abandoned                             required
    ended_at         end of talk; for an abandoned call, when the caller hung up            required
    wrap_up_seconds  after-call work                                                        optional
    outcome          answered | abandoned | short_abandon | transferred                     optional
    agent_id         who answered                                                           optional
    priority         integer, higher is served first                                        optional

Times are read on the call centre's own clock: an ISO time keeps its wall-clock reading
(its offset only makes the instants comparable); epoch seconds are read as UTC.
Bad rows are reported by line and column and counted, never dropped silently; a log
with more than ``max_bad_share`` bad rows is refused (:class:`CallLogError`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulation.errors import SimulationError

__all__ = [
    "COLUMNS",
    "OUTCOMES",
    "BadRow",
    "CallLog",
    "CallLogError",
    "ColumnMap",
    "call_log_json_schema",
    "parse_column_map",
    "read_calls",
    "write_calls",
]

COLUMNS = (
    "arrival_time",
    "queue",
    "ivr_seconds",
    "queued_at",
    "answered_at",
    "ended_at",
    "wrap_up_seconds",
    "outcome",
    "agent_id",
    "priority",
)
REQUIRED = ("arrival_time", "queue", "answered_at", "ended_at")
QUEUE_ALIASES = ("queue", "intent", "skills")
OUTCOMES = ("answered", "abandoned", "short_abandon", "transferred")
ANSWERED, ABANDONED, SHORT_ABANDON, TRANSFERRED = range(4)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class CallLogError(SimulationError):
    """A call log that cannot be used; the message names file, line and column."""


@dataclass(frozen=True, slots=True)
class BadRow:
    """One problem in one row: 1-based file line, canonical column, what is wrong."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.column}: {self.message}"


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Export column name for each canonical column, and outcome labels to ours."""

    names: Mapping[str, str] = field(default_factory=dict)
    outcomes: Mapping[str, str] = field(default_factory=dict)

    def source(self, column: str) -> str:
        return self.names.get(column, column)


def parse_column_map(spec: str | None) -> ColumnMap:
    """``arrival_time=Start,agent_id=Agent`` or the path of a YAML file with ``columns:``
    (canonical -> export name) and optionally ``outcomes:`` (export label -> ours)."""
    if not spec:
        return ColumnMap()
    path = Path(spec)
    if "=" not in spec or path.suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise CallLogError(f"--columns {spec}: cannot read the mapping file: {exc}") from None
        if not isinstance(data, dict):
            raise CallLogError(f"{spec}: a mapping with columns: and outcomes: is expected")
        names, outcomes = data.get("columns") or {}, data.get("outcomes") or {}
    else:
        names, outcomes = {}, {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise CallLogError(f"--columns: {part!r} is not canonical=export_name")
            names[key.strip()] = value.strip()
    for key in names:
        if key not in COLUMNS and key not in QUEUE_ALIASES:
            raise CallLogError(f"--columns: unknown column {key!r}; known: {', '.join(COLUMNS)}")
    for label, ours in outcomes.items():
        if ours not in OUTCOMES:
            raise CallLogError(f"outcomes: {label!r} -> {ours!r}; choose one of {OUTCOMES}")
    return ColumnMap(
        {str(k): str(v) for k, v in names.items()}, {str(k): v for k, v in outcomes.items()}
    )


@dataclass(frozen=True, slots=True)
class CallLog:
    """Good rows as arrays (one entry per call, file order). Times in seconds on the
    centre's clock since 1970-01-01 (so ``// 86400`` is the local day); nan = empty."""

    source: str
    arrival: np.ndarray
    queued: np.ndarray
    answered: np.ndarray
    ended: np.ndarray
    ivr: np.ndarray
    wrap: np.ndarray
    outcome: np.ndarray  # int8, index into OUTCOMES
    queue: np.ndarray  # int32, index into queue_names
    queue_names: tuple[str, ...]
    agent: np.ndarray  # int32, index into agent_names, -1 = none
    agent_names: tuple[str, ...]
    priority: np.ndarray  # int32, 0 when the column is absent
    has_priority: bool
    rows: int  # data rows read, good and bad
    bad: tuple[BadRow, ...]  # the first problems found (up to 50)
    bad_rows: int
    bad_by_column: dict[str, int]

    @property
    def size(self) -> int:
        return int(self.arrival.size)

    @property
    def is_answered(self) -> np.ndarray:
        return ~np.isnan(self.answered)

    @property
    def wait(self) -> np.ndarray:
        """Seconds queued before the answer or the hang-up."""
        end = np.where(self.is_answered, self.answered, self.ended)
        return end - self.queued

    @property
    def talk(self) -> np.ndarray:
        """Talk seconds of answered calls (nan for abandoned)."""
        return self.ended - self.answered

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.source,
            "rows": self.rows,
            "good_rows": self.size,
            "bad_rows": self.bad_rows,
            "bad_by_column": dict(self.bad_by_column),
            "first_problems": [str(b) for b in self.bad[:20]],
        }


class _Time:
    """Parses a time cell into centre-clock seconds; remembers the first offset seen."""

    def __init__(self) -> None:
        self.offset: float | None = None

    def __call__(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            pass
        stamp = datetime.fromisoformat(text)
        off = stamp.utcoffset()
        if off is None:
            return (stamp - _EPOCH.replace(tzinfo=None)).total_seconds()
        local = stamp.timestamp() + off.total_seconds()
        if self.offset is None:
            self.offset = off.total_seconds()
        return local


def _seconds(text: str) -> float:
    v = float(text)
    if not math.isfinite(v) or v < 0:
        raise ValueError("must be a finite number >= 0")
    return v


class _Codes:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    def __call__(self, name: str) -> int:
        k = self.index.get(name)
        if k is None:
            k = self.index[name] = len(self.index)
        return k

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.index)


def read_calls(
    path: str | Path, columns: ColumnMap | None = None, *, max_bad_share: float = 0.01
) -> CallLog:
    """Read and check a call log; raise :class:`CallLogError` if it cannot be used."""
    cmap = columns or ColumnMap()
    where = str(path)
    try:
        fh = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as exc:
        raise CallLogError(f"{where}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise CallLogError(f"{where}: empty file, a header row is expected")
        pos = {name.strip(): k for k, name in enumerate(header)}

        def find(col: str) -> int | None:
            return pos.get(cmap.source(col))

        idx = {c: find(c) for c in COLUMNS}
        if idx["queue"] is None:
            for alias in ("intent", "skills"):
                if find(alias) is not None:
                    idx["queue"] = find(alias)
                    break
        for need in REQUIRED:
            if idx[need] is None:
                hint = " (or intent, or skills)" if need == "queue" else ""
                raise CallLogError(
                    f"{where}: line 1: column {cmap.source(need)!r}{hint} missing; "
                    f"header has {', '.join(header)} (map names with --columns)"
                )
        return _read_rows(where, reader, idx, cmap, max_bad_share)


def _read_rows(where, reader, idx, cmap, max_bad_share) -> CallLog:  # type: ignore[no-untyped-def]
    parse_time = _Time()
    queues, agents = _Codes(), _Codes()
    outcome_code = {o: k for k, o in enumerate(OUTCOMES)}
    for label, ours in cmap.outcomes.items():
        outcome_code[label] = OUTCOMES.index(ours)
    nan = math.nan
    i_arr, i_q, i_ans, i_end = (idx[c] for c in REQUIRED)
    i_ivr, i_qat, i_wrap, i_out, i_agent, i_prio = (
        idx[c]
        for c in ("ivr_seconds", "queued_at", "wrap_up_seconds", "outcome", "agent_id", "priority")
    )
    width = max(k for k in idx.values() if k is not None) + 1
    cols: list[list[float]] = [[] for _ in range(6)]  # arrival queued answered ended ivr wrap
    out_l: list[int] = []
    q_l: list[int] = []
    ag_l: list[int] = []
    pr_l: list[int] = []
    bad: list[BadRow] = []
    bad_by_column: dict[str, int] = {}
    rows = bad_rows = 0
    for line, rec in enumerate(reader, start=2):
        if not rec:
            continue
        rows += 1
        problem = None
        column = ""
        try:
            if len(rec) < width:
                column, problem = "row", f"{len(rec)} fields, at least {width} expected"
                raise ValueError
            column = "arrival_time"
            arr = parse_time(rec[i_arr].strip())
            column = "queue"
            qname = rec[i_q].strip()
            if not qname:
                problem = "empty"
                raise ValueError
            column = "ivr_seconds"
            text = rec[i_ivr].strip() if i_ivr is not None else ""
            ivr = _seconds(text) if text else nan
            column = "queued_at"
            text = rec[i_qat].strip() if i_qat is not None else ""
            qat = parse_time(text) if text else arr + (0.0 if ivr != ivr else ivr)
            if qat < arr - 1e-6:
                problem = "before arrival_time"
                raise ValueError
            column = "answered_at"
            text = rec[i_ans].strip()
            ans = parse_time(text) if text else nan
            if ans < qat - 1e-6:
                problem = "before queued_at"
                raise ValueError
            column = "ended_at"
            end = parse_time(rec[i_end].strip())
            if end < (qat if ans != ans else ans) - 1e-6:
                problem = "before " + ("queued_at" if ans != ans else "answered_at")
                raise ValueError
            column = "wrap_up_seconds"
            text = rec[i_wrap].strip() if i_wrap is not None else ""
            wrap = _seconds(text) if text else nan
            column = "outcome"
            text = rec[i_out].strip() if i_out is not None else ""
            if text:
                oc = outcome_code.get(text)
                if oc is None:
                    problem = f"{text!r} is not one of {', '.join(OUTCOMES)}"
                    raise ValueError
            else:
                oc = ABANDONED if ans != ans else ANSWERED
            answered = ans == ans
            if answered != (oc in (ANSWERED, TRANSFERRED)):
                problem = f"{OUTCOMES[oc]} but answered_at is {'set' if answered else 'empty'}"
                raise ValueError
            column = "priority"
            text = rec[i_prio].strip() if i_prio is not None else ""
            prio = int(text) if text else 0
            column = "agent_id"
            text = rec[i_agent].strip() if i_agent is not None else ""
            agent = agents(text) if text else -1
        except (ValueError, OverflowError):
            bad_rows += 1
            bad_by_column[column] = bad_by_column.get(column, 0) + 1
            if len(bad) < 50:
                msg = problem
                if not msg:
                    k = idx.get(column)
                    cell = rec[k].strip() if k is not None and k < len(rec) else ""
                    kind = (
                        "a time (ISO 8601 or epoch seconds)"
                        if column.endswith(("_time", "_at"))
                        else "a number"
                        if column != "agent_id"
                        else "an id"
                    )
                    msg = f"{cell!r} is not {kind}"
                bad.append(BadRow(line, cmap.source(column), msg))
            continue
        for lst, v in zip(cols, (arr, qat, ans, end, ivr, wrap), strict=True):
            lst.append(v)
        out_l.append(oc)
        q_l.append(queues(qname))
        ag_l.append(agent)
        pr_l.append(prio)
    if rows == 0:
        raise CallLogError(f"{where}: no data rows")
    if bad_rows > max_bad_share * rows:
        first = "; ".join(str(b) for b in bad[:3])
        raise CallLogError(
            f"{where}: {bad_rows} of {rows} rows are bad ({bad_rows / rows:.1%}, more than "
            f"{max_bad_share:.1%} allowed); first: {first}"
        )
    f64 = [np.asarray(c, dtype=np.float64) for c in cols]
    return CallLog(
        source=where,
        arrival=f64[0],
        queued=f64[1],
        answered=f64[2],
        ended=f64[3],
        ivr=f64[4],
        wrap=f64[5],
        outcome=np.asarray(out_l, dtype=np.int8),
        queue=np.asarray(q_l, dtype=np.int32),
        queue_names=queues.names,
        agent=np.asarray(ag_l, dtype=np.int32),
        agent_names=agents.names,
        priority=np.asarray(pr_l, dtype=np.int32),
        has_priority=idx["priority"] is not None,
        rows=rows,
        bad=tuple(bad),
        bad_rows=bad_rows,
        bad_by_column=bad_by_column,
    )


def _iso(seconds: float, tz: timezone) -> str:
    if seconds != seconds:
        return ""
    stamp = _EPOCH + timedelta(seconds=round(seconds, 3))
    return stamp.replace(tzinfo=tz).isoformat(timespec="milliseconds")


def write_calls(
    path: str | Path, rows: Iterable[Mapping[str, Any]], utc_offset_hours: float = 0.0
) -> int:
    """Write rows (canonical keys; times as centre-clock seconds since 1970) as a call log."""
    tz = timezone(timedelta(hours=utc_offset_hours))
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            w.writerow(
                [
                    _iso(r["arrival_time"], tz),
                    r["queue"],
                    _num(r.get("ivr_seconds")),
                    _iso(r.get("queued_at", math.nan), tz),
                    _iso(r.get("answered_at", math.nan), tz),
                    _iso(r["ended_at"], tz),
                    _num(r.get("wrap_up_seconds")),
                    r.get("outcome", ""),
                    r.get("agent_id", ""),
                    "" if r.get("priority") is None else int(r["priority"]),
                ]
            )
            n += 1
    return n


def _num(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{float(v):.3f}".rstrip("0").rstrip(".")


_TIME = {
    "type": "string",
    "description": "ISO 8601 with offset, or epoch seconds",
    "anyOf": [{"format": "date-time"}, {"pattern": r"^[0-9]+(\.[0-9]+)?$"}],
}
_SECONDS = {"type": "string", "pattern": r"^([0-9]+(\.[0-9]*)?)?$", "description": "seconds >= 0"}


def call_log_json_schema() -> str:
    """JSON Schema of one call-log row (every CSV cell is a string)."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ivr-router call log row",
        "description": (
            "One CSV row per call, header row first. Rename columns of another export with "
            "`ivr fit --columns canonical=export,...` or a YAML file {columns: {...}, outcomes: "
            "{...}}. Times are read on the call centre's clock."
        ),
        "type": "object",
        "required": list(REQUIRED),
        "properties": {
            "arrival_time": {**_TIME, "description": "call reached the system"},
            "queue": {
                "type": "string",
                "minLength": 1,
                "description": "queue name; `intent` or `skills` (a;b) are accepted too",
            },
            "ivr_seconds": {**_SECONDS, "description": "seconds in the IVR (optional)"},
            "queued_at": {**_TIME, "description": "joined the queue (default arrival+ivr)"},
            "answered_at": {
                "anyOf": [_TIME, {"const": ""}],
                "description": "agent answered; empty if not answered",
            },
            "ended_at": {**_TIME, "description": "end of talk, or when the caller hung up"},
            "wrap_up_seconds": {**_SECONDS, "description": "after-call work (optional)"},
            "outcome": {
                "enum": [*OUTCOMES, ""],
                "description": "default: answered if answered_at is set, else abandoned",
            },
            "agent_id": {"type": "string", "description": "who answered (optional)"},
            "priority": {
                "type": "string",
                "pattern": r"^(-?[0-9]+)?$",
                "description": "integer, higher is served first (optional)",
            },
        },
    }
    return json.dumps(schema, indent=2)
