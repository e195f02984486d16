"""`ivr flows graph` SVGs are readable: Graphviz `dot` lays them out, and the geometry
checker (tests/svg_geometry.py) finds no overlapping labels and no edge through a box."""

from __future__ import annotations

import os
import shutil

import pytest
import svg_geometry
from conftest import FLOWS

from ivr.flows import load_flow
from ivr.flows.graph import node_targets, render_svg

pytestmark = pytest.mark.skipif(
    shutil.which("dot") is None and not os.environ.get("CI"),
    reason="Graphviz `dot` is not installed (apt-get install graphviz; CI installs it)",
)
SHIPPED = sorted(p for p in FLOWS.glob("*.yaml") if p.name not in ("routing.yaml",
                                                                    "agents.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_flow_draws_without_overlaps(path):
    svg = render_svg(load_flow(path))
    nodes, edges = svg_geometry.parse(svg)
    assert len(nodes) == len(load_flow(path).nodes) and edges
    assert svg_geometry.overlapping_labels(svg) == []
    assert svg_geometry.edges_through_nodes(svg) == []
    assert svg_geometry.labels_over_nodes(svg) == []
    assert "__" not in svg  # internal names such as __agent__ never show


def test_where_every_key_goes_is_readable_at_every_bank_menu():
    flow = load_flow(FLOWS / "bank.yaml")
    _, edges = svg_geometry.parse(render_svg(flow))
    drawn: dict[tuple[str, str], str] = {}
    for e in edges:  # several choices may lead to one node: one label each
        drawn[(e.tail, e.head)] = drawn.get((e.tail, e.head), "") + " | " + e.label
    menus = 0
    for node_id, node in flow.nodes.items():
        if node.type != "ask":
            continue
        menus += 1
        for name, intent in node.intents.items():
            label = drawn[(node_id, intent.next.replace("__agent__", "agent (escape)"))]
            expected = f"{name} [{','.join(intent.keys)}]" if intent.keys else name
            assert expected in label, (node_id, name, label)
        for field, target in node_targets(node):
            assert (node_id, target.replace("__agent__", "agent (escape)")) in drawn, field
    assert menus >= 4


def test_the_checker_finds_overlaps_and_edges_through_boxes():
    svg = """<svg xmlns="http://www.w3.org/2000/svg"><g class="graph">
    <g class="node"><title>a</title><polygon points="0,0 100,0 100,40 0,40"/></g>
    <g class="node"><title>b</title><polygon points="0,200 100,200 100,240 0,240"/></g>
    <g class="node"><title>c</title><polygon points="0,100 100,100 100,140 0,140"/></g>
    <g class="edge"><title>a-&gt;b</title><path d="M50,40C50,80 50,160 50,200"/>
      <text text-anchor="middle" x="60" y="90" font-size="10">english [1]</text></g>
    <g class="edge"><title>a-&gt;c</title><path d="M90,40C90,60 90,80 90,100"/>
      <text text-anchor="middle" x="62" y="92" font-size="10">spanish [2]</text></g>
    </g></svg>"""
    assert svg_geometry.overlapping_labels(svg) == [("english [1]", "spanish [2]")]
    assert svg_geometry.edges_through_nodes(svg) == [("a->b", "c")]


def test_without_dot_the_svg_command_says_what_to_install(monkeypatch, tmp_path, capsys):
    from ivr.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on this PATH
    assert main(["flows", "graph", str(FLOWS / "quickstart.yaml"), "-o",
                 str(tmp_path / "q.svg")]) == 1
    assert "needs Graphviz `dot` (Debian: apt-get install graphviz)" in capsys.readouterr().err
    assert not (tmp_path / "q.svg").exists()
