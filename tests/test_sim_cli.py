"""``ivr simulate``, ``ivr staff`` and ``ivr erlang`` through an argparse parser."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pytest

from simulation.cli import add_commands

SCENARIO = """\
arrivals: {rates_per_hour: [300, 600, 400, 200], interval_minutes: 30}
duration_hours: 2
handle_time: {distribution: exponential, mean_seconds: 180}
patience: {distribution: exponential, mean_seconds: 120}
agents: [{count: 25, cost_per_hour: 20}]
service_level_seconds: 20
replications: 4
seed: 7
"""


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture()
def scenario(tmp_path: Path) -> Path:
    p = tmp_path / "day.yaml"
    p.write_text(SCENARIO, encoding="utf-8")
    return p


def test_simulate_writes_summary_intervals_and_charts(
    scenario: Path, tmp_path: Path, capsys
) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "out"
    assert run(["simulate", str(scenario), "--out", str(out), "--workers", "1", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "service_level" in table and "95% CI" in table
    doc = json.loads((out / "summary.json").read_text())
    for key in (
        "offered",
        "answered",
        "abandoned",
        "abandon_rate",
        "service_level",
        "asa_seconds",
        "p_wait",
        "aht_seconds",
        "occupancy",
        "transfer_rate",
        "containment",
    ):
        assert set(doc[key]) == {"mean", "ci_low", "ci_high"}, key
    assert doc["offered"]["mean"] == doc["answered"]["mean"] + doc["abandoned"]["mean"]
    assert (
        doc["service_level"]["ci_low"]
        <= doc["service_level"]["mean"]
        <= doc["service_level"]["ci_high"]
    )
    assert "abandoned stay in the denominator" in doc["definitions"]["service_level"]
    with (out / "intervals.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["interval_start"] for r in rows] == ["00:00", "00:30", "01:00", "01:30"]
    assert {
        "offered",
        "answered",
        "abandoned",
        "service_level",
        "asa_seconds",
        "aht_seconds",
        "occupancy",
        "transfer_rate",
        "containment",
    } <= set(rows[0])
    for png in ("service_level.png", "staffing_vs_load.png", "wait_distribution.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"


def test_simulate_json_goes_to_stdout(scenario: Path, capsys) -> None:
    assert run(["simulate", str(scenario), "--json", "--workers", "1", "--replications", "3"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["run"]["replications"] == 3 and 0 <= doc["p_wait"]["mean"] <= 1


def test_simulate_reports_scenario_errors_with_file_and_field(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SCENARIO.replace("count: 25", "count: -1"), encoding="utf-8")
    assert run(["simulate", str(bad), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "agents.0.count" in err


def test_simulate_prints_the_schema(capsys) -> None:
    assert run(["simulate", "--schema"]) == 0
    assert "arrivals" in json.loads(capsys.readouterr().out)["properties"]


def test_staff_finds_a_table_that_meets_the_targets(scenario: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "staff"
    code = run(
        [
            "staff",
            str(scenario),
            "--service-level",
            "0.8",
            "--within",
            "20",
            "--max-abandon",
            "0.05",
            "--out",
            str(out),
            "--workers",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "agent-hours" in text and "4 of 4 intervals meet the targets; converged" in text
    doc = json.loads((out / "staffing.json").read_text())
    rows = doc["rows"]
    assert [r["agents"] for r in rows][1] > [r["agents"] for r in rows][
        3
    ]  # busier interval, more agents
    for r in rows:
        assert r["service_level"] >= 0.8 and r["abandon_rate"] <= 0.05
    assert doc["cost"] == pytest.approx(doc["agent_hours"] * 20)
    # the staffed scenario can be simulated as it is
    assert run(["simulate", str(out / "staffed_scenario.yaml"), "--json", "--workers", "1"]) == 0


def test_erlang_table_and_json(capsys) -> None:
    assert run(["erlang", "1000", "180", "--patience", "120", "--max-abandon", "0.05"]) == 0
    text = capsys.readouterr().out
    assert "Erlang A" in text and "fewest agents" in text
    assert run(["erlang", "1000", "180", "--agents", "55", "60", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"].startswith("Erlang C") and [r["agents"] for r in doc["rows"]] == [55, 60]
    assert doc["rows"][0]["p_wait"] == pytest.approx(0.3845, abs=1e-3)


MULTI = """\
arrivals: {rates_per_hour: [120, 240], interval_minutes: 30}
duration_hours: 1
handle_time: {distribution: exponential, mean_seconds: 120}
patience: {distribution: exponential, mean_seconds: 120}
intents:
  - {name: billing, share: 0.6}
  - {name: tech, share: 0.4}
agents:
  - {name: billing_team, count: 4, skills: {billing: 3}}
  - {name: tech_team, count: 3, skills: {tech: 3}, shift: {start_hour: 0.5, end_hour: 1}}
  - {name: blended, count: 2, skills: {billing: 3, tech: 3}}
routing_policy: ../policies/contact_center.yaml
replications: 2
seed: 3
"""


def test_staff_says_what_it_changed_names_its_columns_and_writes_relative_paths(
    tmp_path: Path, capsys
) -> None:
    pytest.importorskip("matplotlib")
    import yaml
    from conftest import ROOT

    here = tmp_path / "plans"
    here.mkdir()
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "contact_center.yaml").write_bytes(
        (ROOT / "scenarios" / "policies" / "contact_center.yaml").read_bytes()
    )
    path = here / "multi.yaml"
    path.write_text(MULTI, encoding="utf-8")
    out = tmp_path / "out" / "staff"
    code = run(["staff", str(path), "--out", str(out), "--workers", "1", "--quiet",
                "--max-iterations", "2"])
    text = capsys.readouterr().out
    assert code in (0, 1)
    head = text.splitlines()[0].split()
    assert head == ["interval", "group", "calls/h", "load", "(Erl)", "Erlang", "A", "agents",
                    "simulated", "agents", "SL", "abandon"]
    overall = next(line for line in text.splitlines() if line.startswith("overall: "))
    assert " agent-hours, cost " in overall and " intervals meet the targets; " in overall
    assert ("note: group 'tech_team': its shift 00:30-01:00 was ignored: staffing finds the "
            "head count each interval needs") in text
    assert "note: group 'blended' is staffed at 0: every intent it can take has a more " \
        "specialised group" in text
    staffed = yaml.safe_load((out / "staffed_scenario.yaml").read_text())
    assert staffed["routing_policy"] == "../../policies/contact_center.yaml"
    assert (out / "staffing.png").stat().st_size > 10_000
    doc = json.loads((out / "staffing.json").read_text())
    assert doc["rows"][0]["offered_load_erlangs"] == pytest.approx(
        doc["rows"][0]["calls_per_hour"] * 120 / 3600, rel=0.01)
    assert len(doc["notes"]) == 2
    # the staffed scenario runs from where it was written
    assert run(["simulate", str(out / "staffed_scenario.yaml"), "--json", "--workers", "1"]) == 0
