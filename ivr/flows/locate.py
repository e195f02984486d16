"""Where a problem is in a flow's YAML text: the line of the node and field it names.

Problems read ``FILE: node 'menu': intents.sales.next: unknown node ...`` (or
``FILE:12:3: YAML syntax error: ...``); the studio shows each at the line that holds
that field, or the deepest part of its path the text has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

_AT_LINE = re.compile(r"^(?P<file>[^:]*):(?P<line>\d+)(?::(?P<col>\d+))?: (?P<rest>.*)$", re.S)
_NODE = re.compile(r"^node '(?P<node>[^']+)': (?P<rest>.*)$", re.S)
_FIELD = re.compile(r"^(?P<path>[A-Za-z_][\w\-]*(?:(?:\.[\w\-]+)|(?:\[\d+\]))*): (?P<rest>.*)$",
                    re.S)
_PART = re.compile(r"\.?([\w\-]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Located:
    """A problem placed in the text: 1-based line and column, and the message without
    the file name."""

    line: int
    column: int
    message: str


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None


def _child(node: Any, part: str | int) -> tuple[Any, Any] | None:
    """(key node, value node) of a mapping key or sequence index, or None."""
    if isinstance(node, yaml.MappingNode) and isinstance(part, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == part:
                return key, value
    if isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
        item = node.value[part]
        return item, item
    return None


def _walk(root: Any, parts: list[str | int]) -> tuple[int, int]:
    """0-based (line, column) of the deepest part of ``parts`` found under ``root``."""
    at = (0, 0)
    node = root
    for part in parts:
        found = _child(node, part)
        if found is None:
            break
        key, node = found
        at = (key.start_mark.line, key.start_mark.column)
    return at


def locate(text: str, problem: str, root: Any = None) -> Located:
    """Place one problem line in ``text``."""
    m = _AT_LINE.match(problem)
    if m and m.group("line"):
        return Located(int(m.group("line")), int(m.group("col") or 1), m.group("rest"))
    message = problem.split(": ", 1)[1] if ": " in problem else problem
    root = root if root is not None else _compose(text)
    parts: list[str | int] = []
    rest = message
    node = _NODE.match(rest)
    if node:
        parts += ["nodes", node.group("node")]
        rest = node.group("rest")
    field = _FIELD.match(rest)
    if field:
        parts += [int(i) if i else n for n, i in _PART.findall(field.group("path"))]
    if root is None:
        return Located(1, 1, message)
    line, col = _walk(root, parts)
    return Located(line + 1, col + 1, message)


def locate_all(text: str, problems: list[str]) -> list[Located]:
    root = _compose(text)
    return [locate(text, p, root) for p in problems]


def node_lines(text: str) -> dict[str, int]:
    """The 1-based line where each node of ``nodes:`` starts (for jumping to it)."""
    found = _child(_compose(text), "nodes")
    if found is None or not isinstance(found[1], yaml.MappingNode):
        return {}
    return {k.value: k.start_mark.line + 1 for k, _ in found[1].value
            if isinstance(k, yaml.ScalarNode)}
