"""``ivr flows history|publish|rollback|export``: from the shell what the studio does."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ivr.errors import FlowError

if TYPE_CHECKING:
    from ivr.flows.versions import VersionStore

#: Longest message a version may carry.
MAX_MESSAGE = 500


def add_version_commands(fs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the version commands to the ``ivr flows`` sub-parsers."""
    h = fs.add_parser("history", help="a flow's versions, newest first, with what is live")
    h.add_argument("flow_id", metavar="ID")
    h.add_argument("--json", action="store_true", help="print a JSON list")
    h.add_argument("--audit", action="store_true", help="print the audit log instead")
    _store_flags(h)
    h.set_defaults(func=_history)
    p = fs.add_parser("publish", help="check a flow file and make it live for new calls")
    p.add_argument("file", type=Path, metavar="FILE")
    p.add_argument("-m", "--message", required=True, type=_message, help="why (required)")
    p.add_argument("--author", default=None, help="who (default: your login name)")
    _store_flags(p)
    p.set_defaults(func=_publish)
    r = fs.add_parser("rollback", help="make an earlier version live again")
    r.add_argument("flow_id", metavar="ID")
    r.add_argument("version", type=_positive, metavar="VERSION")
    r.add_argument("--author", default=None, help="who (default: your login name)")
    _store_flags(r)
    r.set_defaults(func=_rollback)
    e = fs.add_parser("export", help="write every flow's live version into a folder")
    e.add_argument("folder", type=Path, metavar="DIR")
    _store_flags(e)
    e.set_defaults(func=_export)


def _store_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flows", dest="flows_dir", type=Path, help="flows folder (IVR_FLOWS_DIR)")
    p.add_argument("--data-dir", type=Path, help="folder of the SQLite store (IVR_DATA_DIR)")
    p.add_argument("--database-url", help="postgresql://... (IVR_DATABASE_URL): the versions "
                   "the hosts share, instead of the data dir's SQLite file")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a version number (1, 2, ...)")
    return int(text)


def _message(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the message must say why")
    if len(text) > MAX_MESSAGE:
        raise argparse.ArgumentTypeError(f"at most {MAX_MESSAGE} characters")
    return text.strip()


def iso(t: float | None) -> str | None:
    """A stored time as ISO 8601 UTC, to the second."""
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")


def _author(args: argparse.Namespace) -> str:
    if args.author:
        return str(args.author)[:100]
    try:
        return f"{getpass.getuser()} (shell)"
    except Exception:  # no login name in a container
        return "shell"


def _settings(args: argparse.Namespace) -> Any:
    from ivr.web.settings import Settings

    return Settings.from_env(flows_dir=args.flows_dir, data_dir=args.data_dir,
                             database_url=getattr(args, "database_url", None))


def version_store(data_dir: Path, database_url: str | None = None) -> VersionStore:
    """The flow versions where the server keeps them: in PostgreSQL when a database URL
    is given (what every host serves), else in the data dir's SQLite file."""
    from ivr.flows.versions import VersionStore

    if not database_url:
        return VersionStore(data_dir / "ivr.sqlite3")
    from ivr.live.stores import open_store, open_versions
    from ivr.web.settings import Settings

    return open_versions(open_store(Settings.from_env(data_dir=data_dir,
                                                      database_url=database_url)))


def versioned_registry(flows_dir: Path, data_dir: Path, skip: Iterable[Path] = (),
                       database_url: str | None = None) -> Any:
    """The flows folder with its versions attached (seeding the store on first use) and
    routes checked against the folder's routing policy, as the server does."""
    from ivr.flows.registry import FlowRegistry
    from ivr.live.routing import POLICY_FILE, policy_problems, routing_policy

    registry = FlowRegistry.open(flows_dir)
    registry.attach(version_store(data_dir, database_url), skip=skip)
    policy = routing_policy(flows_dir, registry.flows)
    where = str(flows_dir / POLICY_FILE)
    registry.extra_check = lambda flows: policy_problems(flows, policy, where)
    return registry


def _history(args: argparse.Namespace) -> int:
    from ivr.live.stores import open_existing, open_versions

    store = open_versions(open_existing(_settings(args)))
    if args.flow_id not in store.flow_ids():
        print(f"error: no flow '{args.flow_id}' in {store.path} (flows: "
              f"{', '.join(store.flow_ids()) or 'none'})", file=sys.stderr)
        return 2
    if args.audit:
        rows = [{**a, "at": iso(a["at"])} for a in store.audit(args.flow_id)]
        if args.json:
            print(json.dumps(rows, indent=2))
        for a in rows if not args.json else []:
            print(f"{a['at']}  {a['action']:<9} v{a['version']}  {a['actor']}: {a['message']}")
        return 0
    rows = [{"version": h["version"], "hash": h["hash"], "author": h["author"],
             "created_at": iso(h["created_at"]), "published_at": iso(h["published_at"]),
             "message": h["message"], "live": h["live"]} for h in store.history(args.flow_id)]
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "live"} for r in rows], indent=2))
        return 0
    for r in rows:
        mark = "*" if r["live"] else " "
        print(f"{mark} v{r['version']:<3} {r['hash']}  {r['created_at']}  {r['author']}: "
              f"{r['message']}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from ivr.flows.loader import safe_yaml
    from ivr.flows.publishing import publish

    settings = _settings(args)
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: {args.file}: cannot read: {exc}", file=sys.stderr)
        return 2
    data = safe_yaml(text, str(args.file))
    flow_id = str(data.get("id") or args.file.stem) if isinstance(data, dict) else args.file.stem
    registry = versioned_registry(settings.flows_dir, settings.data_dir, skip=[args.file],
                                  database_url=settings.database_url)
    version = publish(registry, flow_id, text, _author(args), args.message)
    print(f"published {flow_id} version {version.version} ({version.hash})")
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from ivr.flows.publishing import rollback

    settings = _settings(args)
    registry = versioned_registry(settings.flows_dir, settings.data_dir,
                                  database_url=settings.database_url)
    if args.flow_id not in (registry.versions.flow_ids() if registry.versions else []):
        print(f"error: no flow '{args.flow_id}' (flows: {', '.join(sorted(registry.flows))})",
              file=sys.stderr)
        return 2
    version = rollback(registry, args.flow_id, args.version, _author(args))
    print(f"rolled {args.flow_id} back to version {version.version} ({version.hash})")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ivr.flows.publishing import export

    settings = _settings(args)
    registry = versioned_registry(settings.flows_dir, settings.data_dir,
                                  database_url=settings.database_url)
    if args.folder.resolve() == settings.flows_dir.resolve():
        raise FlowError([f"{args.folder}: export into another folder than the flows folder, "
                         "then review and copy (git diff)"])
    for path in export(registry, args.folder):
        print(f"wrote {path}")
    return 0
