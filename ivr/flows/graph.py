"""A flow as a graph: each node's outgoing targets, the networkx graph, and drawings
of it (Graphviz DOT, Mermaid, and an SVG laid out by Graphviz ``dot``)."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any, Callable, Mapping

import networkx as nx

from ivr.errors import IVRError
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


def _display_id(node_id: str) -> str:
    """A node id for people: the loader's built-in human node reads "agent (escape)"."""
    if node_id.startswith("__") and node_id.endswith("__"):
        inner = node_id.strip("_").replace("_", " ")
        return f"{inner} (escape)" if inner == "agent" else inner
    return node_id


def _node_label(node_id: str, node: Node) -> str:
    node_id = _display_id(node_id)
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


def to_dot(nodes: Mapping[str, Node], escape_target: str | None, title: str,
           escapes: bool = True) -> str:
    """Graphviz DOT text of the flow. ``escapes=False`` leaves out the "agent / 0" edge of
    every prompt and says it once in the graph's label instead (the SVG does)."""
    g = build_graph(nodes, escape_target)
    lines = [f"digraph {_quote(title)} {{", "  rankdir=TB; nodesep=0.4; ranksep=0.5;",
             "  node [fontname=Helvetica, fontsize=11];",
             "  edge [fontname=Helvetica, fontsize=10, fontcolor=\"#1a5276\"];"]
    if not escapes and escape_target is not None and escape_target in nodes:
        note = f"From every prompt, 'agent' or 0 goes to {_display_id(escape_target)}."
        lines.append(f"  labelloc=b; fontname=Helvetica; fontsize=10; label={_quote(note)};")
    for node_id, node in nodes.items():
        shape = _SHAPES.get(node.type, "box")
        lines.append(f"  {_quote(_display_id(node_id))} "
                     f"[label={_quote(_node_label(node_id, node))}, shape={shape}];")
    for a, b, data in g.edges(data=True):
        if data.get("escape") and not escapes:
            continue
        style = ", style=dashed, color=gray" if data.get("escape") else ""
        lines.append(f"  {_quote(_display_id(a))} -> {_quote(_display_id(b))} "
                     f"[label={_quote(data['label'])}{style}];")
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


class GraphvizMissing(IVRError):
    """Graphviz ``dot`` is not installed, so no SVG can be drawn."""


def render_svg(flow: Any) -> str:
    """The flow drawn as a standalone SVG by Graphviz ``dot`` (a layered layout with routed
    edges and labels that do not overlap). Raises :class:`GraphvizMissing` without it."""
    return nodes_svg(flow.nodes, flow.escape_target, flow.spec.name or flow.id)


def nodes_svg(nodes: Mapping[str, Node], escape_target: str | None, title: str) -> str:
    """:func:`render_svg` of nodes as written (the flow studio draws a draft that does not
    load yet this way)."""
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizMissing("drawing an SVG needs Graphviz `dot` (Debian: apt-get install "
                              "graphviz); -o FILE.dot or FILE.mmd need nothing")
    dot = to_dot(nodes, escape_target, title, escapes=False)
    done = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True,
                          timeout=60, check=False)
    if done.returncode != 0:
        raise IVRError(f"Graphviz dot failed: {done.stderr.strip()[:300]}")
    # From the <svg> element on: the XML prolog and DOCTYPE are left out, so the drawing can
    # be written as a file or placed inline in a page alike.
    return done.stdout[done.stdout.index("<svg"):]
