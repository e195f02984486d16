"""Geometry checks of a Graphviz-style SVG drawing of a graph (reusable by any test).

The drawing's convention is Graphviz's: each node is a ``<g class="node">`` with a
``<title>`` (its id) and a shape (polygon, ellipse or path); each edge is a
``<g class="edge">`` with a ``<title>`` ``from->to``, a ``<path>`` (cubic Bézier) and its
label as ``<text>`` elements. Coordinates are compared in the SVG's own space.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

SVG = "{http://www.w3.org/2000/svg}"
_NUM = re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?")


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return self.x0 < other.x1 and other.x0 < self.x1 and self.y0 < other.y1 and \
            other.y0 < self.y1

    def inset(self, d: float) -> Box:
        return Box(self.x0 + d, self.y0 + d, self.x1 - d, self.y1 - d)

    def contains(self, x: float, y: float) -> bool:
        return self.x0 < x < self.x1 and self.y0 < y < self.y1


@dataclass(frozen=True)
class Edge:
    tail: str
    head: str
    label: str
    label_box: Box | None
    points: tuple[tuple[float, float], ...]


def _points(text: str) -> list[tuple[float, float]]:
    nums = [float(n) for n in _NUM.findall(text)]
    return list(zip(nums[::2], nums[1::2], strict=False))


def _bezier(d: str, steps: int = 16) -> list[tuple[float, float]]:
    """Points along a Graphviz edge path ``M x,y C x,y x,y x,y ...``."""
    pts = _points(d)
    out = [pts[0]]
    for k in range(1, len(pts) - 2, 3):
        p0, p1, p2, p3 = out[-1], pts[k], pts[k + 1], pts[k + 2]
        for i in range(1, steps + 1):
            t = i / steps
            a, b, c, e = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t * t, t ** 3
            out.append((a * p0[0] + b * p1[0] + c * p2[0] + e * p3[0],
                        a * p0[1] + b * p1[1] + c * p2[1] + e * p3[1]))
    return out


def _shape_box(g: ET.Element) -> Box | None:
    xs: list[float] = []
    ys: list[float] = []
    for el in g:
        if el.tag == SVG + "polygon":
            pts = _points(el.get("points", ""))
        elif el.tag == SVG + "ellipse":
            cx, cy = float(el.get("cx", 0)), float(el.get("cy", 0))
            rx, ry = float(el.get("rx", 0)), float(el.get("ry", 0))
            pts = [(cx - rx, cy - ry), (cx + rx, cy + ry)]
        elif el.tag == SVG + "path":
            pts = _points(el.get("d", ""))
        else:
            continue
        xs += [p[0] for p in pts]
        ys += [p[1] for p in pts]
    return Box(min(xs), min(ys), max(xs), max(ys)) if xs else None


def _text_box(texts: list[ET.Element]) -> Box | None:
    """The box of a label's lines: width estimated from the character count (Helvetica's
    mean advance is about 0.55 em), height one em per line, above the baseline."""
    boxes = []
    for t in texts:
        size = float(t.get("font-size", "10"))
        x, y = float(t.get("x", 0)), float(t.get("y", 0))
        w = len(t.text or "") * size * 0.55
        anchor = t.get("text-anchor", "start")
        x0 = x - w / 2 if anchor == "middle" else (x - w if anchor == "end" else x)
        boxes.append(Box(x0, y - size * 0.8, x0 + w, y + size * 0.2))
    if not boxes:
        return None
    return Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes),
               max(b.x1 for b in boxes), max(b.y1 for b in boxes))


def parse(svg_text: str) -> tuple[dict[str, Box], list[Edge]]:
    """Node boxes by id, and edges, of a Graphviz SVG."""
    root = ET.fromstring(svg_text)
    nodes: dict[str, Box] = {}
    edges: list[Edge] = []
    for g in root.iter(SVG + "g"):
        title = g.find(SVG + "title")
        name = title.text if title is not None and title.text else ""
        if g.get("class") == "node":
            box = _shape_box(g)
            if box is not None:
                nodes[name] = box
        elif g.get("class") == "edge":
            tail, _, head = name.partition("->")
            path = g.find(SVG + "path")
            texts = g.findall(".//" + SVG + "text")
            edges.append(Edge(tail, head, " ".join(t.text or "" for t in texts),
                              _text_box(texts),
                              tuple(_bezier(path.get("d", ""))) if path is not None else ()))
    return nodes, edges


def overlapping_labels(svg_text: str) -> list[tuple[str, str]]:
    """Pairs of edge labels whose boxes intersect."""
    _, edges = parse(svg_text)
    labelled = [e for e in edges if e.label_box is not None]
    return [(a.label, b.label) for i, a in enumerate(labelled) for b in labelled[i + 1:]
            if a.label_box.overlaps(b.label_box)]  # type: ignore[union-attr]


def edges_through_nodes(svg_text: str, margin: float = 2.0) -> list[tuple[str, str]]:
    """(edge ``tail->head``, node) for every edge that passes through a node box it does
    not connect (the box shrunk by ``margin`` so that grazing a corner is not counted)."""
    nodes, edges = parse(svg_text)
    found = []
    for e in edges:
        for name, box in nodes.items():
            if name in (e.tail, e.head):
                continue
            inner = box.inset(margin)
            if any(inner.contains(x, y) for x, y in e.points):
                found.append((f"{e.tail}->{e.head}", name))
    return found


def labels_over_nodes(svg_text: str) -> list[tuple[str, str]]:
    """(edge label, node) for every label drawn over a node box."""
    nodes, edges = parse(svg_text)
    return [(e.label, name) for e in edges if e.label_box is not None
            for name, box in nodes.items() if e.label_box.overlaps(box.inset(1.0))]
