"""Checks a parsed flow beyond its shape: targets, reachability, loops, asks.

Every check returns problem lines ``node 'x': field: what is wrong, and the fix``;
the loader prefixes the file name. All problems are collected, none stops the
others, so an admin fixes a file in one pass.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Iterator, Mapping

import networkx as nx

from ivr.flows.graph import build_graph, is_terminal, node_targets
from ivr.flows.models import (
    DTMF_KEYS,
    INTERACTIVE,
    AllCondition,
    AnyCondition,
    AskNode,
    BranchNode,
    CollectNode,
    Condition,
    FlowSpec,
    IncidentCondition,
    LookupNode,
    Node,
    NotCondition,
    OpenCondition,
    ReturnNode,
    RouteNode,
    SurveyNode,
    Text,
)


def check_flow(spec: FlowSpec, nodes: Mapping[str, Node], escape_target: str | None) -> list[str]:
    """All problems of a flow whose sub-flows are already inlined into ``nodes``."""
    problems: list[str] = []
    problems += _check_targets(spec, nodes, escape_target)
    for node_id, node in nodes.items():
        problems += [f"node '{node_id}': {p}" for p in _check_node(spec, node_id, node)]
    if not problems:  # graph checks assume every target exists
        problems += _check_graph(spec, nodes, escape_target)
    return problems


def suggest(name: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``''``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _check_targets(spec: FlowSpec, nodes: Mapping[str, Node], escape: str | None) -> list[str]:
    problems = []
    if spec.start not in nodes:
        problems.append(f"start: unknown node '{spec.start}'{suggest(spec.start, nodes)}")
    if escape is not None and escape not in nodes:
        problems.append(f"escape.target: unknown node '{escape}'{suggest(escape, nodes)}")
    for node_id, node in nodes.items():
        for field, target in node_targets(node):
            if target not in nodes:
                problems.append(
                    f"node '{node_id}': {field}: unknown node '{target}'{suggest(target, nodes)}"
                )
    return problems


def _check_node(spec: FlowSpec, node_id: str, node: Node) -> list[str]:
    problems = [f"{field}: {p}" for field, text in _texts(node) for p in _check_text(spec, text)]
    if isinstance(node, AskNode):
        problems += _check_ask(spec, node_id, node)
    elif isinstance(node, CollectNode) and node.on_failure is None:
        problems.append("on_failure: a collect needs a target for when every try fails "
                        "(add on_failure: <node>, e.g. a route to an agent)")
    elif isinstance(node, BranchNode):
        for k, case in enumerate(node.cases):
            problems += [f"cases[{k}].when: {p}" for p in _check_condition(spec, case.when)]
    elif isinstance(node, LookupNode) and node.source not in spec.sources:
        problems.append(f"source: unknown data source '{node.source}'"
                        f"{suggest(node.source, spec.sources)}; declare it under 'sources'")
    elif isinstance(node, RouteNode):
        if node.language is not None and node.language not in spec.languages:
            problems.append(f"language: '{node.language}' is not one of the flow's languages "
                            f"({', '.join(spec.languages)})")
        for k, rule in enumerate(node.priority_rules):
            problems += [f"priority_rules[{k}].when: {p}"
                         for p in _check_condition(spec, rule.when)]
    elif isinstance(node, ReturnNode) and not spec.subflow:
        problems.append("type: 'return' only ends a sub-flow; this flow is not one "
                        "(add 'subflow: true' at the top, or use hangup/route)")
    return problems


def _check_ask(spec: FlowSpec, node_id: str, node: AskNode) -> list[str]:
    problems = []
    if node.no_match is None:
        problems.append("no_match: an ask needs a target for when the caller's answer is not "
                        "understood after every try (add no_match: <node>, e.g. a route to an "
                        "agent)")
    for field in ("no_match", "no_input"):
        if getattr(node, field) == node_id:
            problems.append(f"{field}: points back to this ask, so a caller who is not "
                            "understood would start over forever; send them to a human")
    seen: dict[str, str] = {}
    for name, intent in node.intents.items():
        if not intent.keys and not intent.examples and node.examples_csv is None:
            problems.append(f"intents.{name}: has no examples and no keys; the caller could "
                            "never choose it (add examples: [...] or keys: [...])")
        if intent.keys and "dtmf" not in node.input:
            problems.append(f"intents.{name}.keys: the ask takes no key presses "
                            "(add 'dtmf' to input)")
        if intent.examples and "speech" not in node.input and not intent.keys:
            problems.append(f"intents.{name}: has only examples but the ask takes no speech "
                            "(add 'speech' to input or give keys)")
        for key in intent.keys:
            if len(key) != 1 or key not in DTMF_KEYS:
                problems.append(f"intents.{name}.keys: '{key}' is not one key of 0-9, * or #")
            elif key in spec.escape.keys:
                problems.append(f"intents.{name}.keys: '{key}' is reserved for reaching an "
                                "agent from any prompt (escape.keys); pick another key")
            elif key in seen:
                problems.append(f"intents.{name}.keys: key '{key}' is also used by intent "
                                f"'{seen[key]}'")
            else:
                seen[key] = name
    return problems


def _check_condition(spec: FlowSpec, cond: Condition) -> list[str]:
    if isinstance(cond, OpenCondition) and cond.open not in spec.hours:
        return [f"open: unknown hours '{cond.open}'{suggest(cond.open, spec.hours)}; "
                "declare it under 'hours'"]
    if isinstance(cond, IncidentCondition) and cond.incident not in spec.incidents:
        return [f"incident: unknown incident '{cond.incident}'"
                f"{suggest(cond.incident, spec.incidents)}; declare it under 'incidents'"]
    if isinstance(cond, (AllCondition, AnyCondition)):
        parts = cond.all if isinstance(cond, AllCondition) else cond.any
        return [p for c in parts for p in _check_condition(spec, c)]
    if isinstance(cond, NotCondition):
        return _check_condition(spec, cond.not_)
    return []


def _texts(node: Node) -> Iterator[tuple[str, Text]]:
    """Every prompt of a node, with its field name."""
    for field in ("text", "prompt", "reprompt", "no_input_prompt", "no_match_prompt",
                  "invalid_prompt", "announce", "thanks"):
        value = getattr(node, field, None)
        if value is not None:
            yield field, value
    if isinstance(node, SurveyNode):
        for k, q in enumerate(node.questions):
            yield f"questions[{k}].prompt", q.prompt
    if isinstance(node, AskNode):
        for name, intent in node.intents.items():
            if intent.label is not None:
                yield f"intents.{name}.label", intent.label


def _check_text(spec: FlowSpec, text: Text) -> list[str]:
    if isinstance(text, str):
        return []
    if isinstance(text, list):  # segments, each in one declared language
        return [f"segment {k} is not one declared language and its text (e.g. "
                f"{{en: Hello}}; declared: {', '.join(spec.languages)})"
                for k, seg in enumerate(text)
                if len(seg) != 1 or next(iter(seg)) not in spec.languages]
    missing = [lang for lang in spec.languages if lang not in text]
    unknown = [lang for lang in text if lang not in spec.languages]
    problems = []
    if missing:
        problems.append(f"no text for language(s) {', '.join(missing)}; a caller who chose "
                        "them would hear the wrong language")
    if unknown:
        problems.append(f"text for undeclared language(s) {', '.join(unknown)} "
                        f"(declared: {', '.join(spec.languages)})")
    return problems


def _builtin(node_id: str) -> bool:
    """Ids like ``__agent__`` are the loader's own nodes, present whether used or not."""
    return node_id.startswith("__") and node_id.endswith("__")


def _check_graph(spec: FlowSpec, nodes: Mapping[str, Node], escape: str | None) -> list[str]:
    g = build_graph(nodes, escape)
    problems = []
    roots = {spec.start}
    reachable = set().union(*(nx.descendants(g, r) | {r} for r in roots))
    for node_id in nodes:
        if node_id not in reachable and not _builtin(node_id):
            problems.append(f"node '{node_id}': unreachable from start '{spec.start}' "
                            "(link to it or delete it)")
    ends = {n for n, node in nodes.items() if is_terminal(node)}
    can_end = set(ends).union(*(nx.ancestors(g, e) for e in ends)) if ends else set()
    for node_id in nodes:
        if node_id in reachable and node_id not in can_end:
            problems.append(f"node '{node_id}': can never reach an end (hangup, route, "
                            "transfer or return): every path from it loops forever")
    # A cycle made only of nodes that do not wait for the caller would spin forever.
    auto = g.subgraph(n for n, node in nodes.items() if not isinstance(node, INTERACTIVE))
    for scc in nx.strongly_connected_components(auto):
        cycle = sorted(scc)
        if len(cycle) > 1 or auto.has_edge(cycle[0], cycle[0]):
            problems.append(f"node '{cycle[0]}': loop {' -> '.join(cycle)} never waits for the "
                            "caller, so it would spin forever; put an ask in it or break it")
    return problems

