"""A flow as a graph: each node's outgoing targets, the networkx graph, and drawings
of it (Graphviz DOT, Mermaid, and a self-contained SVG that needs no Graphviz)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any, Callable, Iterable, Mapping

import networkx as nx

from ivr.flows.models import (
    TERMINAL,
    AskNode,
    BranchNode,
    CollectNode,
    LookupNode,
    Node,
    RouteNode,
    TransferNode,
)

# Fields holding the id of another node, for node kinds with plain target fields.
_TARGET_FIELDS = ("next", "default", "found", "not_found", "no_match", "no_input",
                  "on_failure", "after")


def node_targets(node: Node) -> list[tuple[str, str]]:
    """``(field path, target node id)`` for every edge leaving ``node``."""
    out: list[tuple[str, str]] = []
    if isinstance(node, AskNode):
        out += [(f"intents.{name}.next", i.next) for name, i in node.intents.items()]
    if isinstance(node, BranchNode):
        out += [(f"cases[{k}].next", c.next) for k, c in enumerate(node.cases)]
    for field in _TARGET_FIELDS:
        value = getattr(node, field, None)
        if isinstance(value, str):
            out.append((field, value))
    return out


def map_targets(node: Node, rename: Callable[[str], str]) -> Node:
    """A copy of ``node`` with every target id passed through ``rename``."""
    update: dict[str, object] = {}
    if isinstance(node, AskNode):
        update["intents"] = {
            name: i.model_copy(update={"next": rename(i.next)}) for name, i in node.intents.items()
        }
    if isinstance(node, BranchNode):
        update["cases"] = [c.model_copy(update={"next": rename(c.next)}) for c in node.cases]
    for field in _TARGET_FIELDS:
        value = getattr(node, field, None)
        if isinstance(value, str):
            update[field] = rename(value)
    return node.model_copy(update=update)


def build_graph(nodes: Mapping[str, Node], escape_target: str | None) -> nx.MultiDiGraph:
    """The flow's directed graph; edges carry a ``label`` (the field or intent).

    Every ask and collect also gets an edge to the escape target, since "agent" or 0
    reaches a human from there (a survey or voicemail does not listen for it).
    """
    g = nx.MultiDiGraph()
    for node_id, node in nodes.items():
        g.add_node(node_id, kind=node.type)
    for node_id, node in nodes.items():
        for field, target in node_targets(node):
            if target in nodes:
                g.add_edge(node_id, target, label=_edge_label(node, field))
        if escape_target in nodes and isinstance(node, (AskNode, CollectNode)):
            g.add_edge(node_id, escape_target, label="agent / 0", escape=True)
    return g


def is_terminal(node: Node) -> bool:
    """True for nodes after which the IVR's part of the call may be over."""
    return isinstance(node, TERMINAL)


def _edge_label(node: Node, field: str) -> str:
    if isinstance(node, AskNode) and field.startswith("intents."):
        name = field.split(".")[1]
        keys = node.intents[name].keys
        return f"{name} [{','.join(keys)}]" if keys else name
    if isinstance(node, BranchNode) and field.startswith("cases["):
        return f"case {field[6:field.index(']')]}"
    return "" if field == "next" else field


def _node_label(node_id: str, node: Node) -> str:
    if isinstance(node, RouteNode):
        skills = ", ".join(f"{s}>={lvl}" for s, lvl in node.skills.items())
        return f"{node_id}\\nroute: {node.queue}" + (f"\\n{skills}" if skills else "")
    if isinstance(node, TransferNode):
        return f"{node_id}\\ntransfer: {node.number}"
    if isinstance(node, LookupNode):
        return f"{node_id}\\nlookup: {node.source}"
    if isinstance(node, CollectNode):
        return f"{node_id}\\ncollect: {node.store_as}"
    return f"{node_id}\\n{node.type}"


_SHAPES = {"ask": "diamond", "collect": "diamond", "branch": "hexagon", "route": "doubleoctagon",
           "transfer": "doubleoctagon", "hangup": "doublecircle", "survey": "diamond",
           "voicemail": "diamond"}


def _quote(s: str) -> str:
    return '"' + s.replace('"', '\\"') + '"'


def to_dot(nodes: Mapping[str, Node], escape_target: str | None, title: str) -> str:
    """Graphviz DOT text of the flow."""
    g = build_graph(nodes, escape_target)
    lines = [f"digraph {_quote(title)} {{", "  rankdir=TB;", "  node [fontname=Helvetica];"]
    for node_id, node in nodes.items():
        shape = _SHAPES.get(node.type, "box")
        lines.append(f"  {_quote(node_id)} [label={_quote(_node_label(node_id, node))}, "
                     f"shape={shape}];")
    for a, b, data in g.edges(data=True):
        style = ", style=dashed, color=gray" if data.get("escape") else ""
        lines.append(f"  {_quote(a)} -> {_quote(b)} [label={_quote(data['label'])}{style}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_mermaid(nodes: Mapping[str, Node], escape_target: str | None) -> str:
    """Mermaid flowchart text of the flow (renders on GitHub and in most wikis)."""
    ids = {node_id: f"n{k}" for k, node_id in enumerate(nodes)}
    g = build_graph(nodes, escape_target)
    lines = ["flowchart TD"]
    for node_id, node in nodes.items():
        label = _node_label(node_id, node).replace("\\n", "<br/>").replace('"', "'")
        open_, close = ("{", "}") if node.type in ("ask", "collect", "branch", "survey") else (
            ("([", "])") if is_terminal(node) else ("[", "]"))
        lines.append(f'  {ids[node_id]}{open_}"{label}"{close}')
    for a, b, data in g.edges(data=True):
        arrow = "-.->" if data.get("escape") else "-->"
        label = data["label"].replace('"', "'").replace("|", "/")
        lines.append(f"  {ids[a]} {arrow}|{label}| {ids[b]}" if label else
                     f"  {ids[a]} {arrow} {ids[b]}")
    return "\n".join(lines) + "\n"


def to_svg(nodes: Mapping[str, Node], escape_target: str | None, title: str) -> str:
    """A standalone SVG drawing: nodes in layers by distance from the start."""
    g = build_graph(nodes, escape_target)
    start = next(iter(nodes))
    layers = _layers(g, start, nodes)
    box_w, box_h, gap_x, gap_y = 170, 46, 30, 70
    width = max(len(layer) for layer in layers) * (box_w + gap_x) + gap_x
    height = len(layers) * (box_h + gap_y) + gap_y
    pos: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        offset = (width - len(layer) * (box_w + gap_x) + gap_x) / 2
        for col, node_id in enumerate(layer):
            pos[node_id] = (offset + col * (box_w + gap_x), gap_y / 2 + row * (box_h + gap_y))
    svg = ET.Element("svg", {"xmlns": "http://www.w3.org/2000/svg", "width": str(width),
                             "height": str(height), "viewBox": f"0 0 {width} {height}",
                             "font-family": "Helvetica, Arial, sans-serif", "font-size": "11"})
    ET.SubElement(svg, "title").text = title
    defs = ET.SubElement(svg, "defs")
    marker = ET.SubElement(defs, "marker", id="arrow", viewBox="0 0 10 10", refX="10", refY="5",
                           markerWidth="7", markerHeight="7", orient="auto")
    ET.SubElement(marker, "path", d="M0,0 L10,5 L0,10 z", fill="#555")
    for a, b, data in g.edges(data=True):
        if data.get("escape"):
            continue  # every ask has one; drawn as a note instead of a thicket of lines
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy, ex, ey = x1 + box_w / 2, y1 + box_h, x2 + box_w / 2, y2
        if ey <= sy:  # an edge back up: route it beside the boxes
            sx, sy, ex, ey = x1 + box_w, y1 + box_h / 2, x2 + box_w, y2 + box_h / 2
        ET.SubElement(svg, "line", {"x1": f"{sx:.0f}", "y1": f"{sy:.0f}", "x2": f"{ex:.0f}",
                                    "y2": f"{ey:.0f}", "stroke": "#555",
                                    "marker-end": "url(#arrow)"})
        if data["label"]:
            t = ET.SubElement(svg, "text", x=f"{(sx + ex) / 2 + 3:.0f}",
                              y=f"{(sy + ey) / 2:.0f}", fill="#1a5276")
            t.text = data["label"]
    colors = {"ask": "#fdebd0", "collect": "#fdebd0", "survey": "#fdebd0", "branch": "#e8daef",
              "route": "#d5f5e3", "transfer": "#d5f5e3", "hangup": "#f5b7b1"}
    for node_id, (x, y) in pos.items():
        node = nodes[node_id]
        ET.SubElement(svg, "rect", x=f"{x:.0f}", y=f"{y:.0f}", width=str(box_w),
                      height=str(box_h), rx="8", fill=colors.get(node.type, "#eaf2f8"),
                      stroke="#333")
        for k, line in enumerate(_node_label(node_id, node).split("\\n")[:3]):
            t = ET.SubElement(svg, "text", {"x": f"{x + box_w / 2:.0f}",
                                            "y": f"{y + 15 + k * 13:.0f}",
                                            "text-anchor": "middle"})
            t.text = line if len(line) <= 28 else line[:27] + "…"
    if escape_target in nodes:
        note = ET.SubElement(svg, "text", x="6", y=str(height - 6), fill="#777")
        note.text = f"From every prompt, 'agent' or 0 goes to {escape_target}."
    return ET.tostring(svg, encoding="unicode") + "\n"


def _layers(g: nx.MultiDiGraph, start: str, nodes: Iterable[str]) -> list[list[str]]:
    depth = nx.single_source_shortest_path_length(g, start) if start in g else {}
    rest = [n for n in nodes if n not in depth]
    top = max(depth.values(), default=-1)
    for k, n in enumerate(rest):  # unreachable nodes: drawn at the bottom, still visible
        depth[n] = top + 1 + k // 6
    layers: dict[int, list[str]] = {}
    for n, d in depth.items():
        layers.setdefault(d, []).append(n)
    return [layers[d] for d in sorted(layers)]


def render_svg(flow: Any) -> str:
    """The flow drawn as a standalone SVG document."""
    return to_svg(flow.nodes, flow.escape_target, flow.spec.name or flow.id)
