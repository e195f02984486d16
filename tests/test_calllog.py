"""The call-log format: reading, bad rows by line and column, column maps, the schema."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from simulation.calllog import (
    ABANDONED,
    ANSWERED,
    CallLogError,
    call_log_json_schema,
    parse_column_map,
    read_calls,
)
from simulation.cli import add_commands

HEADER = "arrival_time,queue,queued_at,answered_at,ended_at,outcome,agent_id,priority\n"
GOOD = [
    "2026-03-02T09:00:00+01:00,billing,2026-03-02T09:00:30+01:00,2026-03-02T09:00:40+01:00,"
    "2026-03-02T09:04:40+01:00,answered,ann,0",
    "2026-03-02T09:01:00+01:00,tech,2026-03-02T09:01:20+01:00,,2026-03-02T09:02:20+01:00,"
    "abandoned,,1",
]


def _write(tmp_path: Path, rows: list[str], header: str = HEADER) -> Path:
    p = tmp_path / "calls.csv"
    p.write_text(header + "\n".join(rows) + "\n", encoding="utf-8")
    return p


def test_reads_times_on_the_centres_clock_and_derives_waits(tmp_path):
    log = read_calls(_write(tmp_path, GOOD))
    assert log.size == 2 and log.bad_rows == 0
    assert log.arrival[0] % 86400 == 9 * 3600  # 09:00 local, whatever the offset
    assert list(log.wait) == [10.0, 60.0]
    assert log.talk[0] == 240.0
    assert list(log.outcome) == [ANSWERED, ABANDONED]
    assert log.queue_names == ("billing", "tech") and log.agent_names == ("ann",)
    assert list(log.priority) == [0, 1]


def test_epoch_seconds_and_missing_optional_columns(tmp_path):
    p = _write(
        tmp_path, ["100,q,,110", "200,q,230,330"], "arrival_time,queue,answered_at,ended_at\n"
    )
    log = read_calls(p)
    assert list(log.queued) == [100.0, 200.0]  # no queued_at, no ivr: queued on arrival
    assert list(log.outcome) == [ABANDONED, ANSWERED]  # inferred from answered_at
    assert not log.has_priority


def test_bad_rows_are_counted_and_named_by_line_and_column(tmp_path):
    rows = GOOD * 100 + [
        "yesterday,billing,,,2026-03-02T09:04:40+01:00,abandoned,,0",
        "2026-03-02T09:00:00+01:00,billing,,2026-03-02T08:00:00+01:00,2026-03-02T09:04:40+01:00,answered,,0",
        "2026-03-02T09:00:00+01:00,billing,,,2026-03-02T09:04:40+01:00,answered,,0",
    ]
    log = read_calls(_write(tmp_path, rows), max_bad_share=0.05)
    assert log.size == 200 and log.rows == 203 and log.bad_rows == 3
    assert [str(b) for b in log.bad] == [
        "line 202: arrival_time: 'yesterday' is not a time (ISO 8601 or epoch seconds)",
        "line 203: answered_at: before queued_at",
        "line 204: outcome: answered but answered_at is empty",
    ]
    assert log.bad_by_column == {"arrival_time": 1, "answered_at": 1, "outcome": 1}


def test_a_log_with_too_many_bad_rows_is_refused(tmp_path):
    rows = GOOD * 10 + ["2026-03-02T09:00:00+01:00,,,,2026-03-02T09:04:40+01:00,,,"]
    with pytest.raises(CallLogError, match=r"1 of 21 rows are bad .*line 22: queue: empty"):
        read_calls(_write(tmp_path, rows))
    assert read_calls(_write(tmp_path, rows), max_bad_share=0.1).bad_rows == 1


def test_missing_column_names_the_header_and_the_fix(tmp_path):
    p = _write(tmp_path, ["1,2"], "start,skill\n")
    with pytest.raises(
        CallLogError, match=r"column 'arrival_time' missing; header has start, skill \(map"
    ):
        read_calls(p)


def test_column_map_inline_and_yaml_with_outcome_labels(tmp_path):
    p = _write(
        tmp_path,
        ["100,q,,110,HANG", "200,q,230,330,AGENT"],
        "Start,Skill,Answer,End,Result\n",
    )
    spec = "arrival_time=Start,queue=Skill,answered_at=Answer,ended_at=End,outcome=Result"
    with pytest.raises(CallLogError, match="'HANG' is not one of"):
        read_calls(p, parse_column_map(spec), max_bad_share=0)
    y = tmp_path / "map.yaml"
    y.write_text(
        "columns: {arrival_time: Start, queue: Skill, answered_at: Answer, ended_at: End,"
        " outcome: Result}\noutcomes: {HANG: abandoned, AGENT: answered}\n"
    )
    log = read_calls(p, parse_column_map(str(y)))
    assert list(log.outcome) == [ABANDONED, ANSWERED]
    with pytest.raises(CallLogError, match="unknown column 'start_time'"):
        parse_column_map("start_time=Start")


def test_published_schema_is_the_generated_one():
    path = Path(__file__).resolve().parent.parent / "scenarios" / "calllog.schema.json"
    assert json.loads(path.read_text()) == json.loads(call_log_json_schema()), (
        "regenerate: .venv/bin/ivr fit --schema > scenarios/calllog.schema.json"
    )


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_fit_cli_bad_input_exits_2_with_one_line(tmp_path, capsys):
    p = _write(tmp_path, ["1,2"], "start,skill\n")
    assert run(["fit", str(p), "--out", str(tmp_path / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "column 'arrival_time' missing" in err
    with pytest.raises(SystemExit) as exc:
        run(["fit", str(p), "--out", "x", "--max-bad", "2"])
    assert exc.value.code == 2 and "must be between 0 and 1" in capsys.readouterr().err
