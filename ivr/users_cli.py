"""``ivr users``: add, list, reset and remove the people who sign in to the pages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from ivr.errors import IVRError
from ivr.users import ROLES, UserError, Users, new_password


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("users", help="people who sign in to the agent desktop, wallboard "
                                     "and reports")
    us = p.add_subparsers(title="user commands", metavar="COMMAND")
    a = us.add_parser("add", help="add a user (prints a random password unless "
                                  "--password-stdin)")
    a.add_argument("name")
    a.add_argument("--role", required=True, choices=ROLES)
    a.add_argument("--agent-id", help="the router's agent this user works as (agents: "
                                      "default the name)")
    _password_flag(a)
    a.set_defaults(func=_add)
    ls = us.add_parser("list", help="list users and their roles")
    ls.set_defaults(func=_list)
    r = us.add_parser("reset", help="new password; unlocks and signs the user out")
    r.add_argument("name")
    _password_flag(r)
    r.set_defaults(func=_reset)
    rm = us.add_parser("remove", help="remove a user (their sessions end)")
    rm.add_argument("name")
    rm.set_defaults(func=_remove)
    for parser in (a, ls, r, rm):
        parser.add_argument("--data-dir", type=Path,
                            help="folder of the SQLite store (IVR_DATA_DIR, default var)")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _password_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--password-stdin", action="store_true",
                   help="read the password from the first line of standard input")


def open_users(data_dir: Path | None) -> Users:
    """The users of the server's store: PostgreSQL when IVR_DATABASE_URL is set (every
    host signs them in), else the data dir's SQLite store (created if needed)."""
    import datetime as dt

    from ivr.live import stores
    from ivr.web.settings import Settings

    settings = Settings.from_env(data_dir=data_dir)
    if settings.store != "sqlite" and not settings.database_url:
        raise IVRError("IVR_STORE=memory keeps no users between runs: use the sqlite store")
    return stores.open_users(stores.open_store(settings),
                             clock=lambda: dt.datetime.now(dt.timezone.utc))


def _password(args: argparse.Namespace, stdin: TextIO | None) -> tuple[str, bool]:
    """(password, generated)."""
    if not args.password_stdin:
        return new_password(), True
    line = (stdin or sys.stdin).readline()
    return line.rstrip("\r\n"), False


def _add(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    password, generated = _password(args, stdin)
    try:
        user = open_users(args.data_dir).add(args.name, args.role, password, args.agent_id)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    agent = f" as agent '{user.agent_id}'" if user.agent_id else ""
    print(f"added {user.role} '{user.name}'{agent}")
    if generated:
        print(f"password: {password}")
    return 0


def _list(args: argparse.Namespace) -> int:
    users = open_users(args.data_dir)
    for user in users.list():
        lock = "  (locked)" if users.locked(user.name) else ""
        print(f"{user.name}\t{user.role}\t{user.agent_id or '-'}{lock}")
    return 0


def _reset(args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    password, generated = _password(args, stdin)
    try:
        open_users(args.data_dir).reset(args.name, password)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"reset '{args.name}': unlocked, open sessions ended")
    if generated:
        print(f"password: {password}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    try:
        open_users(args.data_dir).remove(args.name)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"removed '{args.name}'")
    return 0
