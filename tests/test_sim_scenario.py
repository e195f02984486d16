"""Scenario files: the minimal form, errors naming file and field, schema, call-log replay."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation.errors import ScenarioError, SimulationError
from simulation.runner import simulate_replication
from simulation.scenario import load_scenario, parse_scenario, scenario_json_schema

MINIMAL = """\
arrivals: {rate_per_hour: 1000}          # Poisson; or a per-interval list; or replay: a call-log CSV
duration_hours: 8
handle_time: {distribution: exponential, mean_seconds: 180}
patience: {distribution: exponential, mean_seconds: 120}   # leave out for callers who never hang up
agents: [{count: 55}]                    # one group, one skill
service_level_seconds: 20
replications: 10
seed: 7
"""


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_the_minimal_textbook_form_is_accepted_as_is(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, MINIMAL))
    assert sc.arrivals.rate_per_hour == 1000
    assert sc.agents[0].count == 55 and sc.agents[0].skill_levels == {"default": 3}
    assert sc.patience is not None and sc.patience.mean == 120
    assert sc.replications == 10 and sc.seed == 7 and sc.n_intervals == 16


def test_the_shipped_example_scenarios_load() -> None:
    root = Path(__file__).resolve().parent.parent / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_scenario(f)


@pytest.mark.parametrize(
    "mutation,field",
    [
        ("agents: [{count: -3}]", "agents.0.count"),
        ("handle_time: {distribution: lognormal, mean_seconds: 180}", "handle_time"),
        ("arrivals: {rate_per_hour: 10, replay: x.csv}", "arrivals"),
        ("replications: 1", "replications"),
        ("agents: [{count: 5, skills: {billing: 7}}]", "agents.0.skills"),
        ("colour: blue", "colour"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, mutation: str, field: str) -> None:
    key = mutation.split(":")[0]
    lines = [ln for ln in MINIMAL.splitlines() if not ln.startswith(key + ":")]
    path = write(tmp_path, "\n".join(lines + [mutation]) + "\n")
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.file == str(path)
    assert err.value.field.startswith(field)
    assert str(path) in str(err.value) and field in str(err.value)


def test_semantic_errors_and_unreadable_files(tmp_path: Path) -> None:
    bad = MINIMAL.replace("agents: [{count: 55}]", "agents: [{count: 5, skills: [sales]}]")
    with pytest.raises(ScenarioError, match="no agent group has skill"):
        load_scenario(write(tmp_path, bad))
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(write(tmp_path, "arrivals: [\n", "broken.yaml"))
    with pytest.raises(SimulationError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    short = MINIMAL.replace(
        "{rate_per_hour: 1000}", "{rates_per_hour: [100, 200], interval_minutes: 60}"
    )
    sc = load_scenario(write(tmp_path, short, "short.yaml"))
    with pytest.raises(ScenarioError) as err:
        simulate_replication(sc, 0)
    assert err.value.field == "arrivals.rates_per_hour"


def test_json_schema_is_published() -> None:
    schema = json.loads(scenario_json_schema())
    assert {"arrivals", "agents", "duration_hours", "intents"} <= set(schema["properties"])
    assert "base_dir" not in schema["properties"]


def test_replay_uses_recorded_instants_and_handle_times(tmp_path: Path) -> None:
    rows = ["arrival_time,intent,handle_seconds,patience_seconds"]
    rows += [
        "2026-03-02T09:00:05,billing,100,",
        "2026-03-02T09:00:07,billing,50,1",
        "2026-03-02T09:00:09,tech,70,",
    ]
    write(tmp_path, "\n".join(rows) + "\n", "log.csv")
    text = """
arrivals: {replay: log.csv}
duration_hours: 24
agents: [{count: 1, skills: [billing, tech]}]
replications: 2
"""
    sc = load_scenario(write(tmp_path, text))
    rep = simulate_replication(sc, 0)
    c = rep.calls
    start = 9 * 3600
    assert list(c.arrival) == [start + 5, start + 7, start + 9]
    # one agent: call 0 talks 100 s; call 1 hangs up after 1 s; call 2 waits until 09:01:45
    assert (
        c.answered_at[0] == start + 5
        and np.isnan(c.answered_at[1])
        and c.abandoned_at[1] == start + 8
    )
    assert c.answered_at[2] == start + 105
    assert list(c.handled_seconds[[0, 2]]) == [100.0, 70.0]


def test_replay_with_seconds_and_skills_columns(tmp_path: Path) -> None:
    write(tmp_path, "arrival_time,skills,handle_seconds\n10,a;b,30\n0,a,20\n", "log.csv")
    sc = load_scenario(
        write(
            tmp_path,
            "arrivals: {replay: log.csv}\nduration_hours: 1\n"
            "agents: [{count: 2, skills: [a, b]}]\n",
        )
    )
    c = simulate_replication(sc, 0).calls
    assert list(c.arrival) == [0.0, 10.0] and not c.waited.any()


def test_replay_errors_name_the_log_and_column(tmp_path: Path) -> None:
    write(tmp_path, "arrival_time,intent\n0,a\n", "log.csv")
    sc = load_scenario(
        write(
            tmp_path,
            "arrivals: {replay: log.csv}\nduration_hours: 1\nagents: [{count: 1, skills: [a]}]\n",
        )
    )
    with pytest.raises(ScenarioError) as err:
        simulate_replication(sc, 0)
    assert err.value.field == "handle_seconds" and err.value.file.endswith("log.csv")
    write(tmp_path, "arrival_time,intent,handle_seconds\nyesterday,a,3\n", "log.csv")
    with pytest.raises(ScenarioError, match="arrival_time"):
        simulate_replication(sc, 0)


def test_full_form_parses() -> None:
    sc = parse_scenario(
        {
            "arrivals": {"rates_per_hour": [100, 300, 200, 100], "interval_minutes": 15},
            "duration_hours": 1,
            "intents": [
                {
                    "name": "billing",
                    "share": 3,
                    "handle_time": {"distribution": "gamma", "mean_seconds": 200, "cv": 0.7},
                    "containment": 0.2,
                    "recognition_accuracy": 0.9,
                    "ivr_seconds": 40,
                },
                {
                    "name": "tech",
                    "share": 1,
                    "handle_time": {"distribution": "empirical", "values_seconds": [100, 400]},
                },
            ],
            "agents": [
                {"name": "bill", "count": 10, "skills": {"billing": 4}, "cost_per_hour": 30},
                {
                    "name": "blend",
                    "count": 3,
                    "skills": {"billing": 2, "tech": 5},
                    "shift": {"start_hour": 0.5},
                },
            ],
            "wrap_up_seconds": 15,
            "callbacks": {"offer_after_seconds": 60, "accept_share": 0.3},
            "proficiency_speed": {2: 1.2, 4: 0.9, 5: 0.8},
            "cost_per_agent_hour": 25,
        }
    )
    assert (
        sc.n_intervals == 4
        and sc.interval_seconds == 900
        and sc.intent_list[1].required_skills == ("tech",)
    )


def test_the_published_schema_file_is_current() -> None:
    path = Path(__file__).resolve().parent.parent / "scenarios" / "scenario.schema.json"
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(scenario_json_schema()), (
        "regenerate: python -c 'from simulation.scenario import scenario_json_schema as s; "
        "print(s())' > scenarios/scenario.schema.json"
    )
