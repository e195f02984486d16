"""The ``ivr`` command: serve, try a flow, check and draw flows, and the tools of the
routing, intent-recognition and simulation packages."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn, Sequence, TextIO

from ivr.argtypes import e164_phone, iso_time, output_file, port, positive_int
from ivr.errors import FlowError, IVRError
from routing.textfile import NotUTF8Error

#: How the agent leg of ``ivr call --after-agent`` ends: Twilio's ``QueueResult`` values.
AFTER_AGENT = ("bridged", "hangup", "leave", "queue-full", "redirected", "error",
               "system-error")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ivr`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except FlowError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 1
    except (IVRError, NotUTF8Error) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `ivr ... | head`: the reader left; end quietly, as cat does
        _silence_stdout()
        return 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        pass
    finally:
        os.close(devnull)


def package_version() -> str:
    """The installed ``ivr-router`` version."""
    try:
        return version("ivr-router")
    except PackageNotFoundError:  # running from a source tree that was never installed
        from ivr import __version__

        return __version__


class OneLineErrors(argparse.ArgumentParser):
    """A parser whose usage errors are one line on stderr (exit 2), naming the command and
    where its help is; sub-commands inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="ivr", description=__doc__)
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(sub)
    _add_db(sub)
    _add_call(sub)
    _add_flows(sub)
    _add_from("ivr.users_cli", sub)
    nlu = _add_from("ivr.nlu.cli", sub)
    _add_from("ivr.report_cli", sub)
    if nlu is not None:  # `ivr nlu corrections`: the agents' corrections, as examples
        from ivr.report_cli import add_corrections

        add_corrections(next(a for a in nlu._actions
                             if isinstance(a, argparse._SubParsersAction)))
    route_commands = _add_from("routing.cli", sub)
    if route_commands is not None:
        _add_route_explain(route_commands)
    _add_from("simulation.cli", sub)
    return parser


def _add_route_explain(route_sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``ivr route explain CALL_ID``: the routing decisions of a call, from the store."""
    p = route_sub.add_parser("explain", help="why a call went to its agent (from the store)")
    p.add_argument("call_id")
    p.add_argument("--data-dir", type=Path, help="folder of the SQLite store (IVR_DATA_DIR)")
    p.add_argument("--database-url", help="postgresql://... (IVR_DATABASE_URL): the hosts' "
                   "shared store instead of the data dir's")
    p.add_argument("--json", action="store_true", help="print the decision records as JSON")
    p.set_defaults(func=_route_explain)


def _route_explain(args: argparse.Namespace) -> int:
    from ivr.live.stores import location, open_existing, routing_state
    from ivr.web.settings import Settings
    from routing import Decision, RoutingPolicy
    from routing.cli import format_decision

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    store = open_existing(settings)
    found = routing_state(store, RoutingPolicy.default()).decisions(args.call_id)
    if not found:
        print(f"no routing decisions for call {args.call_id} in {location(store)}",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(found, indent=2))
    else:
        print("\n".join(format_decision(Decision.from_dict(d), utc_time) for d in found))
    return 0


def _add_from(module: str, sub: argparse._SubParsersAction) -> Any:  # type: ignore[type-arg]
    """Let a package register its own commands; returns what its add_commands returns."""
    import importlib

    add: Callable[[argparse._SubParsersAction], Any] = importlib.import_module(  # type: ignore[type-arg]
        module).add_commands
    return add(sub)


# ------------------------------------------------------------------ serve


def _add_serve(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("serve", help="run the Twilio webhook server (gunicorn)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=8080, help="port (default 8080)")
    p.add_argument("--workers", type=positive_int, default=2,
                   help="worker processes (default 2)")
    p.add_argument("--threads", type=_threads, default=64,
                   help="threads per worker (default 64): each open agent desktop or "
                        "wallboard holds one for its live stream")
    p.add_argument("--flows", dest="flows_dir", type=Path, help="flows folder (IVR_FLOWS_DIR)")
    p.add_argument("--data-dir", type=Path, help="folder of the SQLite store (IVR_DATA_DIR)")
    p.add_argument("--database-url", help="postgresql://... : PostgreSQL as the store, for "
                                          "several hosts (IVR_DATABASE_URL)")
    p.add_argument("--public-url", help="public base URL Twilio calls, for signature checks "
                                        "behind a proxy or tunnel (IVR_PUBLIC_URL)")
    p.add_argument("--default-flow", help="flow for numbers no flow claims (IVR_DEFAULT_FLOW)")
    p.add_argument("--no-validate", action="store_true",
                   help="DEVELOPMENT ONLY: accept webhooks without a Twilio signature")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warning", "error", "critical"])
    p.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from ivr.server import serve
    from ivr.web.settings import Settings

    settings = Settings.from_env(
        flows_dir=args.flows_dir, data_dir=args.data_dir, public_url=args.public_url,
        default_flow=args.default_flow, validate_signatures=False if args.no_validate else None,
        database_url=args.database_url)
    if settings.store == "memory" and args.workers > 1:
        raise IVRError("IVR_STORE=memory keeps calls inside one process: use --workers 1 "
                       "or the sqlite store")
    return serve(settings, args.host, args.port, args.workers, args.log_level, args.threads)


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{value}: must be 1 to 1000")
    return value


# ------------------------------------------------------------------ db


def _add_db(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("db", help="the store's schema")
    dbs = p.add_subparsers(dest="db_command", required=True)
    u = dbs.add_parser("upgrade", help="create or migrate the store's schema to this version")
    u.add_argument("--database-url", help="postgresql://... (IVR_DATABASE_URL); without it, "
                                          "the SQLite store in the data dir")
    u.add_argument("--data-dir", type=Path, help="folder of the SQLite store (IVR_DATA_DIR)")
    u.set_defaults(func=_db_upgrade)


def _db_upgrade(args: argparse.Namespace) -> int:
    from ivr.web.settings import Settings

    settings = Settings.from_env(data_dir=args.data_dir, database_url=args.database_url)
    if settings.database_url:
        from ivr.live.postgres import LATEST, PostgresDatabase

        db = PostgresDatabase(settings.database_url, max_size=1)
        try:
            applied = db.upgrade()
        finally:
            db.close()
        done = ", ".join(map(str, applied)) if applied else "none needed"
        print(f"PostgreSQL schema at version {LATEST} (applied: {done})")
        return 0
    from ivr.live.calls_store import SQLiteStore
    from ivr.live.routing_store import SQLiteRoutingDB

    path = settings.data_dir / "ivr.sqlite3"
    SQLiteRoutingDB(SQLiteStore(path).connection)  # creates what is missing
    print(f"SQLite store {path} is up to date")
    return 0


# ------------------------------------------------------------------ call


def _add_call(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("call", help="try a flow without a phone: you are the caller")
    p.add_argument("flow", type=Path, help="flow file, e.g. flows/bank.yaml")
    p.add_argument("--from", dest="caller", default="+15005550006", type=e164_phone,
                   help="caller id, E.164 (a number in flows/data/customers.csv is "
                        "recognised)")
    p.add_argument("--to", dest="called", default=None, type=e164_phone,
                   help="dialled number, E.164")
    p.add_argument("--at", type=iso_time,
                   help="pretend it is this time (ISO 8601, e.g. 2026-11-23T10:00:00-05:00) "
                        "for business hours; default: now")
    p.add_argument("--after-agent", metavar="RESULT", default=None, choices=AFTER_AGENT,
                   help="continue past the agent, as if the talk ended with this result, "
                        f"to try a post-call survey (one of: {', '.join(AFTER_AGENT)})")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="record the call in this folder's SQLite store, so that "
                        "`ivr route explain CALL_ID --data-dir DIR` finds it (default: "
                        "nothing is kept)")
    p.add_argument("--agents-offline", action="store_true",
                   help="leave the roster's agents logged out (the call waits in its queue)")
    p.set_defaults(func=_call)


def _call(args: argparse.Namespace, stdin: TextIO | None = None,
          stdout: TextIO | None = None) -> int:
    from ivr.console import ConsoleTelephony, FlaskTransport, TwimlCaller
    from ivr.flows.registry import FlowRegistry
    from ivr.live.calls_store import MemoryStore, SQLiteStore, Store
    from ivr.web import create_app, utc_now
    from ivr.web.settings import Settings

    stdin = stdin or sys.stdin
    out = stdout or sys.stdout
    logging.getLogger("ivr").setLevel(logging.ERROR)  # the terminal is the caller's, not logs
    flows, problems = load_checked(args.flow)  # the very set `ivr flows check FLOW` checks
    if problems:
        raise FlowError(problems)
    (flow,) = flows.values()
    registry = FlowRegistry.of(args.flow.parent, flows, default_flow=flow.id)
    at: dt.datetime | None = args.at
    token = secrets.token_hex(16)  # a throwaway token: requests are signed like Twilio's
    store: Store = (SQLiteStore(args.data_dir / "ivr.sqlite3") if args.data_dir
                    else MemoryStore())
    clock = (lambda: at) if at else utc_now
    app = create_app(Settings(flows_dir=args.flow.parent, store="memory", auth_token=token,
                              public_url="http://localhost", reload_interval_s=0,
                              routing_tick_s=0),
                     store=store, registry=registry, clock=clock)
    routing = app.extensions["ivr.routing"]
    telephony = ConsoleTelephony()
    routing.telephony = telephony  # Twilio's side of the REST API, played in this process
    if not args.agents_offline:  # the roster's agents are logged in, as on a busy morning
        routing.apply(lambda r: [d for a in list(r.agents)
                                 for d in r.set_agent_state(a, "available",
                                                            clock().timestamp())])
    interactive = stdin.isatty()

    def answer(prompts: list[str]) -> str | None:
        if interactive:
            out.write("you> ")
            out.flush()
        line = stdin.readline()
        if not line:
            return None
        if not interactive:
            out.write(f"you> {line.strip()}\n")
        return line.strip()

    def show(line: str) -> None:
        out.write(line + "\n")

    caller = TwimlCaller(FlaskTransport(app, token), answer, show=show,
                         after_queue=args.after_agent,
                         redirects=telephony.redirects,
                         agent_name=agent_namer(args.flow.parent))
    called = args.called or (flow.spec.numbers[0] if flow.spec.numbers else "+15005550000")
    result = caller.call("CA" + secrets.token_hex(16), args.caller, called)
    session = store.get_session(result.call_sid)
    out.write("\n" + describe_outcome(result.ended_by, session.model_dump(mode="json")
                                      if session else None) + "\n")
    decisions = routing.explain(result.call_sid)
    if decisions:
        from routing import Decision
        from routing.cli import format_decision

        out.write("\nRouting decisions:\n" + "\n".join(
            format_decision(Decision.from_dict(d), utc_time) for d in decisions) + "\n")
    if args.data_dir:
        out.write(f"\nRecorded in {args.data_dir}: ivr route explain {result.call_sid} "
                  f"--data-dir {args.data_dir}\n")
    return 0


def agent_namer(flows_dir: Path) -> Callable[[str], str]:
    """``contact -> 'agent_id (contact)'`` from the folder's roster, phone numbers masked as
    in the logs (``farid (+*********88)``); an unknown contact is only masked."""
    from ivr.live.roster import load_roster
    from ivr.logs import redact_phone

    try:
        by_contact = {a.contact: a.id for a in load_roster(flows_dir)}
    except FlowError:
        by_contact = {}

    def name(contact: str) -> str:
        agent = by_contact.get(contact)
        masked = redact_phone(contact)
        return f"{agent} ({masked})" if agent else masked

    return name


def describe_outcome(ended_by: str, session: dict | None) -> str:  # type: ignore[type-arg]
    """Where the call went, for a person: the route, its skills, the agent's context."""
    if session is None:
        return f"The call ended ({ended_by}) before the flow started."
    lines = [f"Flow '{session['flow_id']}' ended at node '{session['node']}' "
             f"({session['outcome'] or session['status']})."]
    route = session.get("route")
    if route and session["status"] in ("queued", "ended"):
        skills = ", ".join(f"{k}>={v}" for k, v in route["skills"].items()) or "any"
        lines.append(f"Routed to queue '{route['queue']}': skills {skills}; language "
                     f"{route['language']}; priority {route['priority']}.")
        lines.append("Context handed to the agent:")
        lines.append(json.dumps(route["context"], indent=2, ensure_ascii=False, default=str))
    if ended_by == "dial":
        lines.append("The call was transferred out.")
    return "\n".join(lines)


def utc_time(t: float) -> str:
    """A decision's wall-clock time, for people."""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# ------------------------------------------------------------------ flows


def _add_flows(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("flows", help="check, draw and describe flow files")
    fs = p.add_subparsers(title="flow commands", metavar="COMMAND")
    c = fs.add_parser("check", help="validate flow files or folders, with the routing policy "
                                    "and roster beside them (exit 1 on any problem)")
    c.add_argument("paths", nargs="+", type=Path)
    c.set_defaults(func=_flows_check)
    g = fs.add_parser("graph", help="draw a flow as SVG, Graphviz DOT or Mermaid")
    g.add_argument("flow", type=Path)
    g.add_argument("-o", "--output", type=output_file,
                   help="output file; its suffix picks the format (.svg, .dot, .mmd); "
                        "a missing folder is created; without it, Mermaid goes to standard "
                        "output")
    g.set_defaults(func=_flows_graph)
    s = fs.add_parser("schema", help="print the flow file JSON Schema (for editors)")
    s.set_defaults(func=_flows_schema)
    from ivr.flows.versions_cli import add_version_commands

    add_version_commands(fs)
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def load_checked(path: Path) -> tuple[dict[str, Any], list[str]]:
    """What ``ivr serve`` (a folder) or ``ivr call`` (one file) would load, with every
    problem: the flows, and the routing policy and roster beside them checked against
    those flows. ``ivr flows check`` reports exactly this."""
    from ivr.flows import load_flow, load_flows
    from ivr.live.routing import check_policy_file

    if path.is_dir():
        flows, problems = load_flows(path)
        if not flows and not problems:
            problems = [f"{path}: no flow files (*.yaml) found"]
        folder = path
    elif not path.exists():
        return {}, [f"{path}: no such file or folder"]
    else:
        try:
            flow = load_flow(path)
        except FlowError as exc:
            return {}, exc.problems
        flows, problems, folder = {flow.id: flow}, [], path.parent
    if flows:
        problems += check_policy_file(folder, flows)  # routing.yaml and agents.yaml too
        problems += _roster_problems(folder)
    return flows, problems


def _roster_problems(folder: Path) -> list[str]:
    """The roster's own problems when there is no routing.yaml (check_policy_file covers
    it otherwise)."""
    from ivr.live.roster import load_roster
    from ivr.live.routing import POLICY_FILE

    if (folder / POLICY_FILE).is_file():
        return []
    try:
        load_roster(folder)
    except FlowError as exc:
        return exc.problems
    return []


def checked_summary(folder: Path, flows: Mapping[str, Any]) -> str:
    """What a check covered: flows, routing policy and roster of ``folder``."""
    from ivr.live.roster import ROSTER_FILE, load_roster
    from ivr.live.routing import POLICY_FILE

    policy = folder / POLICY_FILE
    if policy.is_file():
        from routing.policy import load_policy

        policy_text = f"routing policy {policy} ({len(load_policy(policy).queues)} queues)"
    else:
        policy_text = f"routing policy derived from the route nodes (no {policy})"
    roster = folder / ROSTER_FILE
    roster_text = (f"roster {roster} ({len(load_roster(folder))} agents)" if roster.is_file()
                   else f"no roster ({roster} absent)")
    return f"{len(flows)} flow(s) ({', '.join(sorted(flows))}), {policy_text}, {roster_text}"


def _flows_check(args: argparse.Namespace) -> int:
    problems: list[str] = []
    summaries: list[str] = []
    for path in args.paths:
        flows, found = load_checked(path)
        problems += found
        if not found:
            summaries.append(checked_summary(path if path.is_dir() else path.parent, flows))
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s)", file=sys.stderr)
        return 1
    print("ok: " + "; ".join(summaries))
    return 0


def _flows_graph(args: argparse.Namespace) -> int:
    from ivr.flows import load_flow
    from ivr.flows.graph import render_svg, to_dot, to_mermaid

    out: Path | None = args.output
    suffix = out.suffix.lower() if out else ".mmd"
    if suffix not in (".svg", ".dot", ".gv", ".mmd", ".mermaid"):
        print(f"ivr flows graph: -o: unknown format '{suffix}': use .svg, .dot or .mmd",
              file=sys.stderr)
        return 2
    flow = load_flow(args.flow)
    if suffix == ".svg":
        text = render_svg(flow)
    elif suffix in (".dot", ".gv"):
        text = to_dot(flow.nodes, flow.escape_target, flow.id)
    else:
        text = to_mermaid(flow.nodes, flow.escape_target)
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out} ({len(flow.nodes)} nodes)")
    return 0


def _flows_schema(args: argparse.Namespace) -> int:
    from ivr.flows import flow_json_schema

    print(json.dumps(flow_json_schema(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
