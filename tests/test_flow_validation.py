"""The flow validator: every shipped flow is valid, and every kind of broken flow gets
a message that names file, node and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import FLOWS

from ivr.errors import FlowError
from ivr.flows import flow_json_schema, load_flow, load_flows


def problems_of(path: Path) -> list[str]:
    with pytest.raises(FlowError) as info:
        load_flow(path)
    return info.value.problems


def test_shipped_flows_are_valid():
    flows, problems = load_flows(FLOWS)
    assert problems == []
    assert {"bank", "quickstart", "verify_account"} <= set(flows)
    bank = flows["bank"]
    assert "verify/ask_account" in bank.nodes  # the sub-flow is inlined
    assert bank.escape_target == "agent_general"


MENU = """
start: menu
nodes:
  menu:
    type: ask
    prompt: Billing or support?
    intents:
      billing: {keys: ["1"], examples: [billing], next: billing}
      support: {keys: ["2"], examples: [support], next: support}
    no_match: support
  billing: {type: route, queue: billing, skills: {billing: 2}}
  support: {type: route, queue: support}
"""


def test_minimal_flow_is_valid(write_flow):
    flow = load_flow(write_flow(MENU))
    assert flow.id == "flow"
    assert "__agent__" in flow.nodes  # built-in route to a human when no escape target


@pytest.mark.parametrize("old,new,expected", [
    ("next: billing}", "next: billings}",
     "node 'menu': intents.billing.next: unknown node 'billings' (did you mean 'billing'?)"),
    ("start: menu", "start: manu", "start: unknown node 'manu' (did you mean 'menu'?)"),
    ("    no_match: support\n", "",
     "node 'menu': no_match: an ask needs a target for when the caller's answer is not "
     "understood after every try (add no_match: <node>, e.g. a route to an agent)"),
    ('support: {keys: ["2"]', 'support: {keys: ["1"]',
     "node 'menu': intents.support.keys: key '1' is also used by intent 'billing'"),
    ('support: {keys: ["2"], examples: [support], next: support}', 'support: {next: support}',
     "node 'menu': intents.support: has no examples and no keys; the caller could never "
     "choose it (add examples: [...] or keys: [...])"),
    ('support: {keys: ["2"]', 'support: {keys: ["0"]',
     "node 'menu': intents.support.keys: '0' is reserved for reaching an agent from any "
     "prompt (escape.keys); pick another key"),
    ('support: {keys: ["2"]', 'support: {keys: ["22"]',
     "node 'menu': intents.support.keys: '22' is not one key of 0-9, * or #"),
    ("type: ask", "type: aks",
     "node 'menu': Input tag 'aks' found using 'type' does not match any of the expected tags"),
    ("    prompt: Billing or support?\n", "    promt: Billing or support?\n",
     "node 'menu': promt: unknown field"),
    ("skills: {billing: 2}", "skills: {billing: 7}",
     "node 'billing': skills.billing: Input should be less than or equal to 5"),
])
def test_broken_flow_messages(write_flow, old, new, expected):
    assert old in MENU
    path = write_flow(MENU.replace(old, new))
    problems = problems_of(path)
    assert any(p.startswith(f"{path}: {expected}") for p in problems), problems


def test_unreachable_node(write_flow):
    path = write_flow(MENU + "  orphan: {type: hangup}\n")
    assert problems_of(path) == [
        f"{path}: node 'orphan': unreachable from start 'menu' (link to it or delete it)"]


def test_loop_that_never_waits_and_never_ends(write_flow):
    path = write_flow("""
    start: a
    nodes:
      a: {type: say, text: hello, next: b}
      b: {type: say, text: again, next: a}
    """)
    problems = problems_of(path)
    assert f"{path}: node 'a': can never reach an end (hangup, route, transfer or return): " \
           "every path from it loops forever" in problems
    assert f"{path}: node 'a': loop a -> b never waits for the caller, so it would spin " \
           "forever; put an ask in it or break it" in problems


def test_loop_through_a_branch_without_waiting(write_flow):
    path = write_flow("""
    start: a
    nodes:
      a: {type: say, text: hello, next: b}
      b:
        type: branch
        cases: [{when: {var: x, equals: 1}, next: done}]
        default: a
      done: {type: hangup}
    """)
    assert problems_of(path) == [
        f"{path}: node 'a': loop a -> b never waits for the caller, so it would spin forever; "
        "put an ask in it or break it"]


def test_collect_needs_failure_path_and_languages_need_texts(write_flow):
    path = write_flow("""
    start: acct
    languages: {en: {}, es: {voice: Polly.Lupe, locale: es-US}}
    nodes:
      acct:
        type: collect
        prompt: {en: Enter your account number}
        store_as: account
        next: done
      done: {type: hangup}
    """)
    assert problems_of(path) == [
        f"{path}: node 'acct': prompt: no text for language(s) es; a caller who chose them "
        "would hear the wrong language",
        f"{path}: node 'acct': on_failure: a collect needs a target for when every try fails "
        "(add on_failure: <node>, e.g. a route to an agent)",
    ]


def test_unknown_hours_incident_source_and_return_outside_subflow(write_flow):
    path = write_flow("""
    start: b
    hours: {office: {weekly: {mon: ["09:00-17:00"]}}}
    nodes:
      b:
        type: branch
        cases:
          - {when: {open: ofice}, next: l}
          - {when: {incident: outage}, next: l}
        default: l
      l: {type: lookup, source: crm, found: r, not_found: r}
      r: {type: return}
    """)
    assert problems_of(path) == [
        f"{path}: node 'b': cases[0].when: open: unknown hours 'ofice' (did you mean "
        "'office'?); declare it under 'hours'",
        f"{path}: node 'b': cases[1].when: incident: unknown incident 'outage'; declare it "
        "under 'incidents'",
        f"{path}: node 'l': source: unknown data source 'crm'; declare it under 'sources'",
        f"{path}: node 'r': type: 'return' only ends a sub-flow; this flow is not one (add "
        "'subflow: true' at the top, or use hangup/route)",
    ]


def test_yaml_errors_name_line_and_yes_no_trap(write_flow):
    path = write_flow("start: a\nnodes:\n  a: type: say\n")
    assert problems_of(path) == [
        f"{path}:3:10: YAML syntax error: mapping values are not allowed here"]
    path = write_flow(MENU.replace("examples: [billing]", "examples: [yes]"))
    assert problems_of(path) == [
        f"{path}: node 'menu': intents.billing.examples[0]: Input should be a valid string "
        "(YAML reads yes/no/on/off as true/false: put the word in quotes)"]


def test_bad_values_are_named(write_flow):
    path = write_flow(MENU.replace("start: menu", "start: menu\ntimezone: Mars/Olympus\n"
                                   "numbers: ['555-1234']"))
    problems = problems_of(path)
    assert f"{path}: timezone: Value error, unknown time zone 'Mars/Olympus' (use an IANA " \
           "name like 'America/New_York')" in problems
    assert f"{path}: numbers: Value error, '555-1234' is not an E.164 number like " \
           "'+14155550100'" in problems


def test_subflow_problems(write_flow):
    write_flow("""
    subflow: true
    start: ask_pin
    nodes:
      ask_pin:
        type: collect
        prompt: PIN please
        store_as: pin
        min_digits: 4
        max_digits: 4
        next: back
        on_failure: back
      back: {type: return}
    """, name="pin.yaml")
    good = write_flow("""
    start: verify
    nodes:
      verify: {type: subflow, flow: pin, next: done}
      done: {type: hangup}
    """)
    flow = load_flow(good)
    assert flow.nodes["verify/back"].next == "done"
    bad = write_flow("""
    start: verify
    nodes:
      verify: {type: subflow, flow: pn, next: done}
      done: {type: hangup}
    """, name="bad.yaml")
    (line,) = problems_of(bad)
    assert line.startswith(f"{bad}: node 'verify': flow: no sub-flow 'pn'")
    assert line.endswith("(did you mean 'pin'?)")


def test_folder_problems_two_defaults_and_shared_number(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text(
            "default: true\nnumbers: ['+14155550100']\nstart: x\nnodes:\n  x: {type: hangup}\n")
    flows, problems = load_flows(tmp_path)
    assert set(flows) == {"a", "b"}
    assert problems == [
        f"{tmp_path / 'b.yaml'}: default: only one flow may be the default; "
        f"{tmp_path / 'a.yaml'} already is",
        f"{tmp_path / 'b.yaml'}: numbers: +14155550100 is also claimed by {tmp_path / 'a.yaml'}",
    ]


def test_json_schema_describes_every_node_kind():
    schema = flow_json_schema()
    text = json.dumps(schema)
    for kind in ("say", "play", "ask", "collect", "branch", "set", "goto", "lookup", "route",
                 "transfer", "voicemail", "survey", "subflow", "return", "hangup"):
        assert f'"const": "{kind}"' in text, kind
    assert schema["required"] == ["start", "nodes"]
