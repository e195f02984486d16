"""The flows a server is running, reloaded when their files change.

A server never starts on an invalid flow folder (see :meth:`FlowRegistry.open`) and
never hot-loads an invalid file: it keeps serving the last valid version and logs
why. Versions a call started on stay available, so an edit does not move the
floor under a caller mid-call.

With a :class:`~ivr.flows.versions.VersionStore` attached, the store decides what is
live: changed files become new published versions (through the same checks), and
what the registry serves is each flow's live version (see :mod:`ivr.flows.publishing`).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable, Mapping

from ivr.errors import FlowError
from ivr.flows.loader import Flow, load_flows
from ivr.flows.versions import VersionStore, text_hash

log = logging.getLogger(__name__)
#: Old flow versions kept for calls still running on them.
KEEP_VERSIONS = 64


class FlowRegistry:
    """Flows of one folder by id, with hot reload on file change."""

    def __init__(self, folder: str | Path, default_flow: str | None = None) -> None:
        self.folder = Path(folder)
        self._default_name = default_flow
        self._flows: dict[str, Flow] = {}
        self._versions: OrderedDict[tuple[str, str], Flow] = OrderedDict()
        self._stamp: tuple[tuple[str, float, int], ...] = ()
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.problems: list[str] = []
        #: Checks beyond a flow's own file (e.g. its routes against the routing policy);
        #: a reloaded flow that fails them is not installed.
        self.extra_check: Callable[[Mapping[str, Flow]], list[str]] | None = None
        #: Where versions live once :meth:`attach` is called (None: the files are the truth).
        self.versions: VersionStore | None = None
        self._live_stamp: tuple[tuple[str, int, float], ...] = ()
        self._served: dict[str, str] = {}  # flow id -> hash of the text it was loaded from

    @classmethod
    def open(cls, folder: str | Path, default_flow: str | None = None) -> FlowRegistry:
        """Load the folder; raise :class:`FlowError` if any flow in it is invalid."""
        registry = cls(folder, default_flow)
        flows, problems = load_flows(registry.folder)
        if not problems and not flows:
            problems = [f"{registry.folder}: no flow files (*.yaml) found"]
        if not problems and default_flow is not None and default_flow not in flows:
            problems = [f"default flow '{default_flow}' is not in {registry.folder} "
                        f"(flows: {', '.join(sorted(flows))})"]
        if problems:
            raise FlowError(problems)
        registry._install(flows)
        registry._stamp = registry._file_stamp()
        return registry

    def _file_stamp(self) -> tuple[tuple[str, float, int], ...]:
        stamp = []
        for path in sorted(self.folder.rglob("*")):
            if path.is_file():
                st = path.stat()
                stamp.append((str(path), st.st_mtime, st.st_size))
        return tuple(stamp)

    def _install(self, flows: dict[str, Flow]) -> None:
        for flow in flows.values():
            self._flows[flow.id] = flow
            self._versions[(flow.id, flow.version)] = flow
            self._versions.move_to_end((flow.id, flow.version))
        while len(self._versions) > KEEP_VERSIONS:
            self._versions.popitem(last=False)

    def refresh(self, now: float, min_interval: float = 1.0) -> bool:
        """Reload changed files (at most once per ``min_interval`` seconds of ``now``).

        Valid files replace their flow; invalid ones are logged and skipped, keeping
        the last valid version. Returns True when anything was reloaded.
        """
        if now - self._checked_at < min_interval:
            return False
        files_changed = self._refresh_files(now)
        return self.load_live() or files_changed

    def _refresh_files(self, now: float) -> bool:
        with self._lock:
            self._checked_at = now
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            flows, problems = load_flows(self.folder)
            changed = [f.id for f in flows.values()
                       if self._flows.get(f.id) is None or self._flows[f.id].version != f.version]
            if self.extra_check is not None:
                for flow_id in list(changed):
                    found = self.extra_check({flow_id: flows[flow_id]})
                    if found:
                        problems += found
                        changed.remove(flow_id)
            if self.versions is not None:  # edited files become published versions
                from ivr.flows.publishing import publish_files

                problems += publish_files(self, {k: flows[k] for k in changed}, now=None)
                changed = []
            self.problems = problems
            for line in problems:
                log.error("flow not reloaded, keeping the last valid version",
                          extra={"problem": line})
            self._install({k: v for k, v in flows.items() if k in changed})
            if changed:
                log.info("flows reloaded", extra={"flows": changed})
            return bool(changed)

    def attach(self, versions: VersionStore, skip: Iterable[Path] = ()) -> None:
        """Keep versions in ``versions`` from now on: files it does not know yet become
        published versions (the first start seeds it), then serve what is live there."""
        from ivr.flows.publishing import publish_files

        with self._lock:
            self.versions = versions
            problems = publish_files(self, self._flows, now=None, author="files", skip=skip)
            for flow in self._flows.values():
                try:
                    self._served[flow.id] = text_hash(flow.path.read_text(encoding="utf-8"))
                except OSError:
                    pass
        if problems:
            raise FlowError(problems)
        self.load_live(strict=True)

    def load_live(self, strict: bool = False) -> bool:
        """Serve each flow's live version from the store, if that changed since last
        time (another process, the CLI or the studio published). Returns True if so."""
        from ivr.flows.publishing import live_flows

        if self.versions is None:
            return False
        stamp = self.versions.live_stamp()
        if stamp == self._live_stamp:
            return False
        flows, hashes, problems = live_flows(self, self._served)
        if problems and strict:
            raise FlowError(problems)
        for line in problems:
            log.error("live flow version not loaded", extra={"problem": line})
        with self._lock:
            self._live_stamp = stamp
            changed = {k: f for k, f in flows.items()
                       if k not in self._flows or self._flows[k].version != f.version}
            self._install(changed)
            self._served.update({k: hashes[k] for k in flows})
        if changed:
            log.info("live flow versions loaded", extra={"flows": sorted(changed)})
        return bool(changed)

    def get(self, flow_id: str, version: str | None = None) -> Flow | None:
        """The flow by id: the given version if still kept, else the current one."""
        if version is not None and (flow_id, version) in self._versions:
            return self._versions[(flow_id, version)]
        return self._flows.get(flow_id)

    def for_number(self, called: str | None) -> Flow:
        """The flow that answers a dialled number: the one claiming it, else the default."""
        if called:
            for flow in self._flows.values():
                if called in flow.spec.numbers and not flow.spec.subflow:
                    return flow
        return self.default()

    def default(self) -> Flow:
        """The configured default flow, else the one marked ``default: true``, else the
        first entry flow by name."""
        if self._default_name is not None and self._default_name in self._flows:
            return self._flows[self._default_name]
        entries = [f for f in self._flows.values() if not f.spec.subflow]
        marked = [f for f in entries if f.spec.default]
        chosen = marked or sorted(entries, key=lambda f: f.id)
        if not chosen:
            raise FlowError([f"{self.folder}: no entry flow (every flow is a sub-flow)"])
        return chosen[0]

    @property
    def flows(self) -> dict[str, Flow]:
        return dict(self._flows)


