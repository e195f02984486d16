"""Routing policy files: the example loads, mistakes come back as precise lines."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
import yaml

from routing.cli import _check_policy, add_commands
from routing.errors import PolicyError, UnknownQueueError
from routing.models import Requirement
from routing.policy import RoutingPolicy, load_policy, parse_policy

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "flows" / "routing.yaml"
SRC = "flows/routing.yaml"


def example_data() -> dict:
    return yaml.safe_load(EXAMPLE.read_text())


def problems(data: dict) -> list[str]:
    with pytest.raises(PolicyError) as err:
        parse_policy(data, SRC)
    return err.value.problems


def test_example_bank_policy_loads() -> None:
    p = load_policy(EXAMPLE)
    assert {"general", "billing", "cards", "fraud", "tech", "loans", "spanish"} <= set(p.queues)
    assert p.queues["billing"].relax[0].after_seconds == 30
    assert p.queues["billing"].overflow_queue == "general"
    assert p.queues["fraud"].priority == 2
    assert p.scoring.weight("fraud") == 2.0 and p.scoring.weight("cards") == 1.0
    assert p.reservation.timeout_seconds == 15


def test_relaxation_steps_apply_in_order() -> None:
    p = load_policy(EXAMPLE)
    need = {"billing": 4}
    assert p.effective("billing", need, "en", 0) == Requirement.of({"billing": 4}, "en")
    assert p.effective("billing", need, "en", 1) == Requirement.of({"billing": 2}, "en")
    assert p.effective("billing", need, "en", 2) == Requirement.of({"billing": 1}, "en")
    # fraud's second step also drops the language; a step never raises a level
    assert p.effective("fraud", {"fraud": 2}, "en", 2) == Requirement.of({"fraud": 2}, None)
    assert p.step_label("billing", 1) == "step 1: after 30 s: level >= 2"


def test_default_policy_has_one_general_queue() -> None:
    p = RoutingPolicy.default()
    assert list(p.queues) == ["general"]
    assert p.queues["general"].skills == {"general": 1}
    assert p.queues["general"].service_level.threshold_seconds == 20


def test_out_of_order_step_is_named_with_file_field_and_previous_value() -> None:
    d = example_data()
    d["queues"]["billing"]["relax"][1]["after_seconds"] = 10
    assert problems(d) == [
        f"{SRC}: queues.billing.relax[1].after_seconds: must be >= the previous step (30), got 10"
    ]


def test_all_problems_are_collected_with_suggestions() -> None:
    d = example_data()
    d["queues"]["billing"]["overflow_queue"] = "genral"
    d["queues"]["cards"]["skills"] = {"card": 3}
    d["queues"]["spanish"]["language"] = "ess"
    d["queues"]["loans"]["relax"].append({"after_seconds": 60, "min_level": 4})
    d["scoring"]["skill_weights"]["fraud"] = 0
    got = problems(d)
    assert got == [
        f"{SRC}: scoring.skill_weights.fraud: must be > 0, got 0 (leave a skill out to use default_weight)",
        f"{SRC}: queues.billing.overflow_queue: unknown queue 'genral'; did you mean 'general'?",
        (
            f"{SRC}: queues.cards.skills.card: unknown skill 'card'; did you mean 'cards'? "
            "(add it to `skills` or fix the name)"
        ),
        f"{SRC}: queues.loans.relax[1].min_level: 4 would tighten the previous step (2); steps may only relax",
        (
            f"{SRC}: queues.spanish.language: unknown language 'ess'; did you mean 'es'? "
            "(add it to `languages` or fix the code)"
        ),
    ]


def test_schema_errors_name_the_field() -> None:
    d = example_data()
    d["queues"]["tech"]["relx"] = []
    d["queues"]["fraud"]["relax"][0]["min_level"] = 7
    d["reservation"]["timeout_seconds"] = -1
    got = problems(d)
    assert (
        f"{SRC}: queues.tech.relx: unknown field; did you mean 'relax'? (fields here: skills, "
        "language, priority, service_level, relax, max_wait_seconds, overflow_queue, "
        "handle_seconds)" in got
    )
    assert any(
        line.startswith(f"{SRC}: queues.fraud.relax[0].min_level: ") and "(got 7)" in line
        for line in got
    )
    assert any(line.startswith(f"{SRC}: reservation.timeout_seconds: ") for line in got)
    assert len(got) == 3


def test_a_misspelt_field_is_matched_against_the_fields_of_its_own_level() -> None:
    d = example_data()
    d["queues"]["tech"]["service_level"] = {"threshold_second": 30}
    d["queues"]["fraud"]["relax"][0]["skills"] = {"fraud": 2}
    got = problems(d)
    assert sorted(got) == [
        f"{SRC}: queues.fraud.relax[0].skills: unknown field (fields here: after_seconds, "
        "min_level, any_language)",
        f"{SRC}: queues.tech.service_level.threshold_second: unknown field; did you mean "
        "'threshold_seconds'? (fields here: threshold_seconds, target)",
    ]


def test_overflow_needs_a_wait_and_must_not_loop() -> None:
    d = {
        "queues": {
            "a": {"max_wait_seconds": 60, "overflow_queue": "b"},
            "b": {"max_wait_seconds": 60, "overflow_queue": "a"},
            "c": {"overflow_queue": "a"},
        }
    }
    got = problems(d)
    assert (
        f"{SRC}: queues.a.overflow_queue: overflow loop a -> b -> a; end the chain in a queue without overflow"
        in got
    )
    assert (
        f"{SRC}: queues.c.max_wait_seconds: required with overflow_queue (when should the call move?)"
        in got
    )


def test_unknown_queue_suggests_close_name() -> None:
    with pytest.raises(UnknownQueueError, match="did you mean 'billing'"):
        load_policy(EXAMPLE).queue("biling")


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "routing.yaml"
    bad.write_text("queues:\n  general: {skills: [\n")
    with pytest.raises(PolicyError) as err:
        load_policy(bad)
    assert err.value.problems[0].startswith(f"{bad}: line ")
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "nope.yaml")


def _cli(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    out = io.StringIO()
    assert args.func is _check_policy
    return _check_policy(args, out), out.getvalue()


def test_check_policy_command(tmp_path: Path) -> None:
    code, out = _cli(["route", "check-policy", str(EXAMPLE)])
    assert code == 0 and out.startswith(f"{EXAMPLE}: ok ({len(load_policy(EXAMPLE).queues)} queues")
    d = example_data()
    d["queues"]["billing"]["relax"][1]["after_seconds"] = 10
    d["queues"]["cards"]["overflow_queue"] = "nowhere"
    bad = tmp_path / "routing.yaml"
    bad.write_text(yaml.safe_dump(d))
    code, out = _cli(["route", "check-policy", str(bad)])
    assert code == 1
    assert out.splitlines() == [
        f"{bad}: queues.billing.relax[1].after_seconds: must be >= the previous step (30), got 10",
        f"{bad}: queues.cards.overflow_queue: unknown queue 'nowhere'",
    ]
