"""Checking, publishing and rolling back flow versions: the one path the studio, the
``ivr flows`` commands and hot-reloaded files all take.

A draft is checked exactly as ``ivr flows check`` checks a file (the loader's checks,
the folder-wide ones against the other live flows, and the registry's extra check:
routes against the routing policy). Publishing refuses a draft with any problem, so a
bad draft can never reach a caller.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

from ivr.errors import FlowError
from ivr.flows.loader import Flow, Reader, _folder_problems, load_flow_text
from ivr.flows.versions import FlowVersion, VersionStore, text_hash

if TYPE_CHECKING:
    from ivr.flows.registry import FlowRegistry


def _versions(registry: FlowRegistry) -> VersionStore:
    if registry.versions is None:
        raise FlowError([f"{registry.folder}: flow versions are not kept (no store attached)"])
    return registry.versions


def store_reader(registry: FlowRegistry) -> Reader:
    """Reads files of the flows folder, the live text of a stored flow before the disk's,
    so a draft's sub-flows are the ones callers hear."""
    live = {v.filename: v.text for v in _versions(registry).live().values()}
    folder = registry.folder.resolve()

    def read(path: Path) -> str:
        if path.parent.resolve() == folder and path.name in live:
            return live[path.name]
        return path.read_text(encoding="utf-8")

    return read


def filename_of(registry: FlowRegistry, flow_id: str) -> str:
    """The file a flow is stored as (its live version's, else ``<id>.yaml``)."""
    live = _versions(registry).live().get(flow_id)
    return live.filename if live is not None else f"{flow_id}.yaml"


def check_draft(registry: FlowRegistry, flow_id: str, text: str
                ) -> tuple[Flow | None, list[str]]:
    """Load ``text`` as the flow ``flow_id`` and run every check on it; returns the flow
    (None when it does not load) and the problems, one line each."""
    path = registry.folder / filename_of(registry, flow_id)
    try:
        flow = load_flow_text(text, path, store_reader(registry))
    except FlowError as exc:
        return None, list(exc.problems)
    problems: list[str] = []
    if flow.id != flow_id:
        problems.append(f"{path}: id: '{flow.id}' differs from the flow being edited "
                        f"('{flow_id}'); keep the id or create the flow as a new file")
    others = {k: f for k, f in registry.flows.items() if k != flow_id}
    problems += [p for p in _folder_problems({**others, flow_id: flow})
                 if p.startswith(str(path))]
    if registry.extra_check is not None:
        problems += registry.extra_check({flow_id: flow})
    return flow, problems


def publish(registry: FlowRegistry, flow_id: str, text: str, author: str, message: str,
            now: float | None = None) -> FlowVersion:
    """Check ``text``, store it as a new version and make it live for new calls.

    Raises :class:`FlowError` (and publishes nothing) when the draft has any problem.
    """
    versions = _versions(registry)
    now = time.time() if now is None else now
    _, problems = check_draft(registry, flow_id, text)
    if problems:
        raise FlowError(problems)
    version = versions.record(flow_id, filename_of(registry, flow_id), text, author,
                              message, now)
    versions.publish(flow_id, version.version, author, now, "publish", message)
    versions.drop_draft(flow_id)
    registry.load_live()
    return version


def rollback(registry: FlowRegistry, flow_id: str, number: int, actor: str,
             now: float | None = None) -> FlowVersion:
    """Make an earlier version live again, after checking it still passes (the routing
    policy or a sub-flow may have changed since)."""
    versions = _versions(registry)
    now = time.time() if now is None else now
    version = versions.get(flow_id, number)
    if version is None:
        known = [h["version"] for h in versions.history(flow_id)]
        raise FlowError([f"flow '{flow_id}': no version {number} "
                         f"(versions: {', '.join(map(str, known)) or 'none'})"])
    _, problems = check_draft(registry, flow_id, version.text)
    if problems:
        raise FlowError([f"version {number} no longer passes the checks:", *problems])
    versions.publish(flow_id, number, actor, now, "rollback", f"rolled back to version {number}")
    registry.load_live()
    return version


def publish_files(registry: FlowRegistry, flows: Mapping[str, Flow], now: float | None,
                  author: str = "file", skip: Iterable[Path] = ()) -> list[str]:
    """Files whose text the store has never seen become published versions (the first
    start seeds the store this way). ``flows`` were loaded and checked from those files."""
    versions = _versions(registry)
    now = time.time() if now is None else now
    skipped = {p.resolve() for p in skip}
    problems: list[str] = []
    for flow in flows.values():
        if flow.path.resolve() in skipped:
            continue
        try:
            text = flow.path.read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{flow.path}: cannot read: {exc.strerror}")
            continue
        if versions.with_hash(flow.id, text_hash(text)) is not None:
            continue
        message = f"from file {flow.path.name}"
        version = versions.record(flow.id, flow.path.name, text, author, message, now)
        versions.publish(flow.id, version.version, author, now, "publish", message)
    return problems


def live_flows(registry: FlowRegistry, served: Mapping[str, str]
               ) -> tuple[dict[str, Flow], dict[str, str], list[str]]:
    """Each flow's live version, loaded, unless ``served`` (flow id -> text hash) says the
    registry already serves that text; the hashes of what was loaded; problems of those
    that no longer load."""
    versions = _versions(registry)
    read = store_reader(registry)
    flows: dict[str, Flow] = {}
    hashes: dict[str, str] = {}
    problems: list[str] = []
    current = registry.flows
    for flow_id, version in sorted(versions.live().items()):
        if served.get(flow_id) == version.hash and flow_id in current:
            continue
        hashes[flow_id] = version.hash
        try:
            flows[flow_id] = load_flow_text(version.text, registry.folder / version.filename,
                                            read)
        except FlowError as exc:
            problems += [f"{p} (live version {version.version})" for p in exc.problems]
    return flows, hashes, problems + _folder_problems({**current, **flows})


def export(registry: FlowRegistry, folder: Path) -> list[Path]:
    """Write each flow's live version into ``folder`` under its file name."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for version in sorted(_versions(registry).live().values(), key=lambda v: v.filename):
        out = folder / version.filename
        out.write_text(version.text, encoding="utf-8")
        written.append(out)
    return written
