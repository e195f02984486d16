"""One load path for flows: YAML -> pydantic -> sub-flows inlined -> graph checks ->
an immutable :class:`Flow`. Every problem is collected into one :class:`FlowError`."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping

import yaml
from pydantic import ValidationError

from ivr.errors import FlowError
from ivr.flows.checks import check_flow, suggest
from ivr.flows.directory import Directory, inside, load_directory
from ivr.flows.graph import map_targets, node_targets
from ivr.flows.models import (
    AskNode,
    FlowSpec,
    GotoNode,
    Node,
    ReturnNode,
    RouteNode,
    SubflowNode,
)
from ivr.nlu import IntentRecognizer, build_recognizer
from routing.textfile import NotUTF8Error, open_utf8_text, read_utf8

log = logging.getLogger(__name__)

#: Id of the built-in node that reaches a human when a flow names no escape target.
HUMAN_NODE = "__agent__"
#: Files in a flows folder that are not flows (the routing policy and the roster).
NOT_FLOWS = frozenset({"routing.yaml", "routing.yml", "agents.yaml"})
#: Limits on a flow's YAML, so a pasted or uploaded draft cannot exhaust the server.
MAX_FLOW_BYTES = 512 * 1024
MAX_YAML_DEPTH = 40
MAX_YAML_NODES = 100_000
#: Reads a file of the flows folder (the default reads the disk; a versioned registry
#: reads the published text of a flow from the store).
Reader = Callable[[Path], str]


@dataclass(frozen=True)
class Flow:
    """A validated flow, ready to run. Sub-flows are inlined as ``'<node>/<inner>'``."""

    id: str
    path: Path
    spec: FlowSpec
    nodes: Mapping[str, Node]
    escape_target: str
    version: str
    recognizers: Mapping[str, IntentRecognizer] = field(repr=False)
    directory: Directory = field(repr=False)

    @property
    def default_language(self) -> str:
        return self.spec.default_language


def load_flow(path: str | Path, read: Reader | None = None) -> Flow:
    """Load and validate one flow file; raises :class:`FlowError` listing every problem."""
    return _load(Path(path), stack=(), read=read or _read_file)


def load_flow_text(text: str, path: str | Path, read: Reader | None = None) -> Flow:
    """Load and validate a flow's YAML ``text`` as if it were the file ``path`` (its
    sub-flows and data files are looked up beside ``path``, through ``read``)."""
    return _load(Path(path), stack=(), read=read or _read_file, text=text)


def _read_file(path: Path) -> str:
    return read_utf8(path)


def flow_files(directory: str | Path) -> list[Path]:
    """The flow files of a folder, sorted (``routing.yaml`` is the routing policy, not a flow)."""
    folder = Path(directory)
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))
    return [p for p in files if p.name not in NOT_FLOWS]


def load_flows(directory: str | Path) -> tuple[dict[str, Flow], list[str]]:
    """Load every flow of a folder. Returns the valid flows by id and the problems of the
    others (each line names its file), plus folder-wide problems (duplicate ids, two
    default flows, a number claimed twice)."""
    flows: dict[str, Flow] = {}
    problems: list[str] = []
    folder = Path(directory)
    if not folder.is_dir():
        return {}, [f"{folder}: not a folder of flows"]
    claimed: dict[str, list[Path]] = {}
    for path in flow_files(folder):
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems += exc.problems
            continue
        claimed.setdefault(flow.id, []).append(path)
        flows.setdefault(flow.id, flow)
    for flow_id, paths in claimed.items():
        if len(paths) > 1:  # neither file wins: a hot reload keeps both last valid flows
            del flows[flow_id]
            problems.append(f"{paths[-1]}: id: '{flow_id}' is also the id of "
                            f"{', '.join(map(str, paths[:-1]))}; give each flow its own id")
    problems += _folder_problems(flows)
    return flows, problems


def _folder_problems(flows: Mapping[str, Flow]) -> list[str]:
    problems = []
    defaults = [f for f in flows.values() if f.spec.default]
    if len(defaults) > 1:
        problems.append(f"{defaults[1].path}: default: only one flow may be the default; "
                        f"{defaults[0].path} already is")
    owner: dict[str, Flow] = {}
    for flow in flows.values():
        for number in flow.spec.numbers:
            if number in owner:
                problems.append(f"{flow.path}: numbers: {number} is also claimed by "
                                f"{owner[number].path}")
            owner[number] = flow
    return problems


def _load(path: Path, stack: tuple[Path, ...], read: Reader, text: str | None = None) -> Flow:
    where = str(path)
    spec, raw_text = _parse(path, read, text)
    problems: list[str] = []
    subflows: list[Flow] = []
    nodes = _inline_subflows(spec, path, stack, problems, subflows, read)
    spec = _merge_settings(spec, path, subflows, problems)
    escape = spec.escape.target or HUMAN_NODE
    referenced = any(t == HUMAN_NODE for n in nodes.values() for _, t in node_targets(n))
    if HUMAN_NODE not in nodes and (spec.escape.target is None or referenced):
        nodes[HUMAN_NODE] = RouteNode(type="route", queue="general",
                                      description="built-in: reach a human")
    problems += check_flow(spec, nodes, escape)
    directory, source_problems = load_directory(spec.sources, path.parent)
    problems += source_problems
    recognizers: dict[str, IntentRecognizer] = {}
    if not problems:
        for node_id, node in nodes.items():
            if isinstance(node, AskNode):
                examples, csv_problems = _examples(node, path.parent)
                problems += [f"node '{node_id}': {p}" for p in csv_problems]
                spoken = {name: phrases for name, phrases in examples.items() if phrases}
                if spoken and "speech" in node.input:  # key-only intents need no model
                    recognizers[node_id] = build_recognizer(spoken)
    if problems:
        raise FlowError([f"{where}: {p}" for p in problems])
    digest = hashlib.sha256(raw_text.encode())
    digest.update(json.dumps({k: n.model_dump(mode="json") for k, n in nodes.items()},
                             sort_keys=True).encode())
    return Flow(
        id=spec.id or path.stem,
        path=path,
        spec=spec,
        nodes=MappingProxyType(nodes),
        escape_target=escape,
        version=digest.hexdigest()[:16],
        recognizers=MappingProxyType(recognizers),
        directory=directory,
    )


def _parse(path: Path, read: Reader, text: str | None) -> tuple[FlowSpec, str]:
    where = str(path)
    if text is None:
        try:
            text = read(path)
        except OSError as exc:
            raise FlowError([f"{where}: cannot read: {exc.strerror}"]) from None
        except NotUTF8Error as exc:
            raise FlowError([str(exc)]) from None
    data = safe_yaml(text, where)
    if not isinstance(data, dict):
        raise FlowError([f"{where}: a flow file must be a mapping with 'start' and 'nodes'"])
    try:
        return FlowSpec.model_validate(data), text
    except ValidationError as exc:
        raise FlowError([f"{where}: {line}" for line in format_validation_error(exc)]) from None


def safe_yaml(text: str, where: str) -> Any:
    """YAML parsed with the safe loader, refused when larger than :data:`MAX_FLOW_BYTES`,
    nested deeper than :data:`MAX_YAML_DEPTH` or expanding (aliases included) to more
    than :data:`MAX_YAML_NODES` values."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FLOW_BYTES:
        raise FlowError([f"{where}: too large ({size} bytes; the limit is {MAX_FLOW_BYTES})"])
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_shape(root, where)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise FlowError([f"{where}{at}: YAML syntax error: {reason}"]) from None
    return data


def _check_shape(root: yaml.Node | None, where: str) -> None:
    """Walk the composed YAML (aliases visited each time they are used, as loading would
    expand them), stopping at the first limit crossed."""
    count = 0
    todo: list[tuple[yaml.Node, int]] = [(root, 1)] if root is not None else []
    while todo:
        node, depth = todo.pop()
        count += 1
        if count > MAX_YAML_NODES:
            raise FlowError([f"{where}: too many values (over {MAX_YAML_NODES}, aliases "
                             "counted each time they are used)"])
        if depth > MAX_YAML_DEPTH:
            line = node.start_mark.line + 1
            raise FlowError([f"{where}:{line}: nested deeper than {MAX_YAML_DEPTH} levels"])
        if isinstance(node, yaml.MappingNode):
            todo += [(part, depth + 1) for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            todo += [(item, depth + 1) for item in node.value]


def format_validation_error(exc: ValidationError) -> list[str]:
    """pydantic errors as ``node 'x': field.path: message`` lines, one per problem."""
    lines: list[str] = []
    for err in exc.errors():
        loc = list(err["loc"])
        prefix = ""
        if len(loc) >= 2 and loc[0] == "nodes":
            prefix = f"node '{loc[1]}': "
            loc = loc[2:]
            if loc and isinstance(loc[0], str) and err["type"] != "union_tag_invalid":
                loc = loc[1:]  # the discriminator tag pydantic inserts (e.g. 'ask')
        condition = next((k for k, part in enumerate(loc)
                          if isinstance(part, str) and part.endswith("Condition")), None)
        if condition is not None:  # a union of condition shapes: say it once, plainly
            loc = loc[:condition]
            msg = "not a valid condition: use one of {var: ..., equals: ...}, {open: hours}, " \
                  "{incident: name}, {all: [...]}, {any: [...]}, {not: ...}"
        else:
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown field"
            elif err["type"] == "string_type" and isinstance(err.get("input"), bool):
                msg += " (YAML reads yes/no/on/off as true/false: put the word in quotes)"
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        line = f"{prefix}{path}: {msg}" if path else f"{prefix}{msg}"
        if line not in lines:
            lines.append(line)
    return lines


def _inline_subflows(spec: FlowSpec, path: Path, stack: tuple[Path, ...],
                     problems: list[str], loaded: list[Flow], read: Reader) -> dict[str, Node]:
    """The flow's nodes with each ``subflow`` node replaced by the sub-flow's nodes,
    renamed ``'<node>/<inner>'``; the sub-flow's ``return`` goes to the node's ``next``."""
    nodes: dict[str, Node] = {}
    for node_id, node in spec.nodes.items():
        if not isinstance(node, SubflowNode):
            nodes[node_id] = node
            continue
        sub_path = path.parent / f"{node.flow}.yaml"
        if not _PLAIN_NAME.fullmatch(node.flow):
            problems.append(f"node '{node_id}': flow: '{node.flow}' must be the name of a flow "
                            "in the same folder (letters, digits, '_' and '-' only)")
            nodes[node_id] = GotoNode(type="goto", next=node.next)
            continue
        if not _exists(sub_path, read):
            siblings = [p.stem for p in path.parent.glob("*.yaml")]
            problems.append(f"node '{node_id}': flow: no sub-flow '{node.flow}' "
                            f"({sub_path} not found){suggest(node.flow, siblings)}")
            nodes[node_id] = GotoNode(type="goto", next=node.next)
            continue
        if sub_path.resolve() in stack or sub_path.resolve() == path.resolve():
            problems.append(f"node '{node_id}': flow: sub-flow '{node.flow}' includes itself")
            nodes[node_id] = GotoNode(type="goto", next=node.next)
            continue
        try:
            sub = _load(sub_path, stack + (path.resolve(),), read)
        except FlowError as exc:
            problems.append(f"node '{node_id}': flow: sub-flow '{node.flow}' is invalid: "
                            + "; ".join(exc.problems))
            nodes[node_id] = GotoNode(type="goto", next=node.next)
            continue
        loaded.append(sub)
        if not sub.spec.subflow:
            problems.append(f"node '{node_id}': flow: '{node.flow}' is not a sub-flow "
                            "(add 'subflow: true' to it)")
        prefix = f"{node_id}/"
        nodes[node_id] = GotoNode(type="goto", next=prefix + sub.spec.start,
                                  description=f"sub-flow {node.flow}")
        for inner_id, inner in sub.nodes.items():
            if inner_id == HUMAN_NODE:
                continue
            if isinstance(inner, ReturnNode):
                nodes[prefix + inner_id] = GotoNode(type="goto", next=node.next,
                                                    description=f"return from {node.flow}")
                continue
            nodes[prefix + inner_id] = map_targets(inner, _renamer(prefix, sub))
    return nodes


_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")


def _exists(path: Path, read: Reader) -> bool:
    try:
        read(path)
    except (OSError, NotUTF8Error):
        return False
    return True


def _merge_settings(spec: FlowSpec, path: Path, subflows: list[Flow],
                    problems: list[str]) -> FlowSpec:
    """The flow's spec with its sub-flows' sources, hours and incidents added, so that
    their inlined nodes find them (source paths made absolute)."""
    merged: dict[str, dict[str, Any]] = {
        "sources": dict(spec.sources), "hours": dict(spec.hours), "incidents": dict(spec.incidents)}
    for sub in subflows:
        for name, src in sub.spec.sources.items():
            src = src.model_copy(update={
                k: str((sub.path.parent / v).resolve())
                for k, v in (("csv", src.csv), ("sqlite", src.sqlite)) if v is not None})
            _merge_one(merged["sources"], "sources", name, src, sub, path, problems)
        for name, hours in sub.spec.hours.items():
            _merge_one(merged["hours"], "hours", name, hours, sub, path, problems)
        for name, incident in sub.spec.incidents.items():
            _merge_one(merged["incidents"], "incidents", name, incident, sub, path, problems)
    return spec.model_copy(update=merged)


def _merge_one(into: dict[str, Any], kind: str, name: str, value: Any, sub: Flow,
               path: Path, problems: list[str]) -> None:
    if name not in into:
        into[name] = value
    elif kind == "sources" and into[name].model_copy(update={
            k: str((path.parent / v).resolve()) for k, v in
            (("csv", into[name].csv), ("sqlite", into[name].sqlite)) if v is not None}) == value:
        return
    elif into[name] != value:
        problems.append(f"{kind}.{name}: defined differently in sub-flow '{sub.id}' "
                        f"({sub.path}); give one of them another name")


def _renamer(prefix: str, sub: Flow) -> Callable[[str], str]:
    return lambda target: _outer_target(target, prefix, sub)


def _outer_target(target: str, prefix: str, sub: Flow) -> str:
    # A sub-flow's escape to its built-in human node means the parent's escape.
    return target if target == HUMAN_NODE and HUMAN_NODE not in sub.spec.nodes else prefix + target


def _examples(node: AskNode, base: Path) -> tuple[dict[str, list[str]], list[str]]:
    examples: dict[str, list[str]] = {name: list(i.examples) for name, i in node.intents.items()}
    if node.examples_csv is None:
        return examples, []
    path = base / node.examples_csv
    if not inside(base, node.examples_csv):
        return examples, [f"examples_csv: {node.examples_csv} is outside the flows folder"]
    try:
        with open_utf8_text(path) as fh:
            reader = csv.DictReader(fh)
            if not {"text", "category"} <= set(reader.fieldnames or []):
                return examples, [f"examples_csv: {node.examples_csv} needs a header "
                                  "'text,category'"]
            unknown: set[str] = set()
            for row in reader:
                if row["category"] in examples:
                    examples[row["category"]].append(row["text"])
                else:
                    unknown.add(row["category"])
    except OSError as exc:
        return examples, [f"examples_csv: cannot read {node.examples_csv}: {exc.strerror}"]
    except NotUTF8Error as exc:
        return examples, [f"examples_csv: {exc}"]
    if unknown:
        return examples, [f"examples_csv: categories without an intent in this ask: "
                          f"{', '.join(sorted(unknown)[:10])}"]
    return examples, []


def spec_summary(flow: Flow) -> dict[str, Any]:
    """A small JSON-able description of a loaded flow, for the admin API and the CLI."""
    return {"id": flow.id, "path": str(flow.path), "version": flow.version,
            "nodes": len(flow.nodes), "languages": list(flow.spec.languages),
            "default": flow.spec.default, "numbers": list(flow.spec.numbers)}
