"""The people who sign in to the pages: agents, supervisors and admins.

Passwords are hashed with scrypt (``hashlib.scrypt``, a memory-hard standard KDF) and a
random salt per user. A name that fails ``MAX_FAILURES`` times in a row is locked for
``LOCK_SECONDS``; a reset by an admin unlocks it. Each user has a ``stamp`` that changes
on every reset, so a reset (or a removal) ends that user's open sessions.

:class:`Users` holds the rules; where the rows live is a small :class:`UserTable`:
SQLite (a table in the data dir's store, the embedded default) or memory (tests and the
one-process ``memory`` store). A PostgreSQL table only needs the same five methods.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Protocol

from ivr.errors import IVRError

ROLES = ("agent", "supervisor", "admin")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_FAILURES = 5
LOCK_SECONDS = 15 * 60
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
#: scrypt cost: N=2^14, r=8, p=1 (16 MB, tens of ms): OWASP's minimum for scrypt.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL,
    agent_id     TEXT,
    password     TEXT NOT NULL,
    stamp        TEXT NOT NULL,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);
"""


class UserError(IVRError):
    """A user cannot be added or changed; the message names the field."""


@dataclass(frozen=True)
class User:
    """A person who can sign in. ``agent_id`` ties an agent to the router's agent."""

    name: str
    role: str
    agent_id: str | None = None
    stamp: str = ""

    def has_role(self, *roles: str) -> bool:
        """Admins may do everything; others what their role names."""
        return self.role == "admin" or self.role in roles


@dataclass(frozen=True)
class UserRow:
    """A stored user, with the secrets and counters :class:`User` does not expose."""

    user: User
    password: str
    failures: int = 0
    locked_until: float = 0.0
    created_at: float = 0.0


class UserTable(Protocol):
    """Where user rows live."""

    def get(self, name: str) -> UserRow | None: ...

    def put(self, row: UserRow) -> None:
        """Insert or replace the row of ``row.user.name``."""
        ...

    def insert(self, row: UserRow) -> bool:
        """Insert a new row; False if the name is taken."""
        ...

    def delete(self, name: str) -> bool: ...

    def all(self) -> list[UserRow]: ...


# ------------------------------------------------------------------ hashing


def hash_password(password: str, n: int | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` (base64), verifiable by :func:`check_password`."""
    n = n or SCRYPT_N
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
                            dklen=32, maxmem=256 * 1024 * 1024)
    return "$".join(["scrypt", str(n), str(SCRYPT_R), str(SCRYPT_P),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                             r=int(r), p=int(p), dklen=32, maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


_dummy: list[str] = []


def _waste_time(password: str) -> None:
    """Check against a throwaway hash when the name is unknown or locked, so a wrong name
    costs as long as a wrong password and does not reveal which names exist."""
    if not _dummy:
        _dummy.append(hash_password(secrets.token_hex(16)))
    check_password(password, _dummy[0])


# ------------------------------------------------------------------ rules


class Users:
    """Add, verify, reset, remove and list users over a :class:`UserTable`."""

    def __init__(self, table: UserTable, clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self.clock = clock

    def add(self, name: str, role: str, password: str, agent_id: str | None = None) -> User:
        """A new user; an agent's ``agent_id`` defaults to their name."""
        _check_name(name)
        if role not in ROLES:
            raise UserError(f"role: '{role}' is not one of {', '.join(ROLES)}")
        _check_password(password)
        if agent_id is not None:
            _check_name(agent_id, "agent-id")
        if role == "agent" and agent_id is None:
            agent_id = name
        user = User(name, role, agent_id, secrets.token_hex(8))
        row = UserRow(user, hash_password(password), created_at=self.clock())
        if not self.table.insert(row):
            raise UserError(f"user '{name}' already exists (use reset to change the password)")
        return user

    def verify(self, name: str, password: str) -> User | None:
        """The user, if the password is theirs and the name is not locked; counts failures
        and locks the name after ``MAX_FAILURES`` in a row."""
        row = self.table.get(name) if NAME.match(name or "") else None
        if row is None:
            _waste_time(password)
            return None
        now = self.clock()
        if row.locked_until > now:
            _waste_time(password)
            return None
        if not check_password(password, row.password):
            failures = row.failures + 1
            locked = now + LOCK_SECONDS if failures >= MAX_FAILURES else 0.0
            self.table.put(replace(row, failures=0 if locked else failures,
                                   locked_until=locked))
            return None
        if row.failures or row.locked_until:
            self.table.put(replace(row, failures=0, locked_until=0.0))
        return row.user

    def locked(self, name: str) -> bool:
        row = self.table.get(name)
        return row is not None and row.locked_until > self.clock()

    def get(self, name: str) -> User | None:
        row = self.table.get(name)
        return row.user if row else None

    def reset(self, name: str, password: str) -> User:
        """A new password; unlocks the name and ends the user's open sessions."""
        row = self._row(name)
        _check_password(password)
        user = replace(row.user, stamp=secrets.token_hex(8))
        self.table.put(replace(row, user=user, password=hash_password(password), failures=0,
                               locked_until=0.0))
        return user

    def remove(self, name: str) -> None:
        if not self.table.delete(name):
            raise UserError(f"no user '{name}'")

    def list(self) -> list[User]:
        return sorted((r.user for r in self.table.all()), key=lambda u: u.name)

    def _row(self, name: str) -> UserRow:
        row = self.table.get(name)
        if row is None:
            raise UserError(f"no user '{name}'")
        return row


def _check_name(name: str, field: str = "name") -> None:
    if not NAME.match(name or ""):
        raise UserError(f"{field}: '{name}' must be 1-64 letters, digits or . _ @ -, "
                        "starting with a letter or digit")


def _check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"password: must be {MIN_PASSWORD} to {MAX_PASSWORD} characters "
                        f"(got {len(password)})")


def new_password() -> str:
    """A random password for a person to type: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


# ------------------------------------------------------------------ tables


class SqlUserTable:
    """The ``users`` table of the store: ``connect()`` gives this thread's connection in
    autocommit mode with ``?`` placeholders (:meth:`ivr.live.calls_store.SQLiteStore.connection`,
    or :class:`ivr.live.postgres.PostgresConnect`, whose schema ``ivr db upgrade`` makes)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        connect().executescript(SCHEMA)

    def get(self, name: str) -> UserRow | None:
        row = self._connect().execute(
            "SELECT name, role, agent_id, stamp, password, failures, locked_until, created_at "
            "FROM users WHERE name = ?", (name,)).fetchone()
        return _row(row) if row else None

    def put(self, row: UserRow) -> None:
        self._connect().execute(
            "INSERT INTO users (name, role, agent_id, stamp, password, failures, "
            "locked_until, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO UPDATE "
            "SET role = excluded.role, agent_id = excluded.agent_id, stamp = excluded.stamp, "
            "password = excluded.password, failures = excluded.failures, "
            "locked_until = excluded.locked_until, created_at = excluded.created_at",
            _values(row))

    def insert(self, row: UserRow) -> bool:
        cur = self._connect().execute(
            "INSERT INTO users (name, role, agent_id, stamp, password, failures, "
            "locked_until, created_at) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (name) DO NOTHING",
            _values(row))
        return bool(cur.rowcount > 0)

    def delete(self, name: str) -> bool:
        cur = self._connect().execute("DELETE FROM users WHERE name = ?", (name,))
        return cur.rowcount > 0

    def all(self) -> list[UserRow]:
        rows = self._connect().execute(
            "SELECT name, role, agent_id, stamp, password, failures, locked_until, created_at "
            "FROM users ORDER BY name").fetchall()
        return [_row(r) for r in rows]


def _values(row: UserRow) -> tuple[object, ...]:
    u = row.user
    return (u.name, u.role, u.agent_id, u.stamp, row.password, row.failures, row.locked_until,
            row.created_at)


def _row(r: Iterable[object]) -> UserRow:
    name, role, agent_id, stamp, password, failures, locked_until, created_at = r
    return UserRow(User(str(name), str(role), agent_id if agent_id is None else str(agent_id),
                        str(stamp)), str(password), int(failures),  # type: ignore[call-overload]
                   float(locked_until), float(created_at))  # type: ignore[arg-type]


class MemoryUserTable:
    """Users in this process only."""

    def __init__(self) -> None:
        self._rows: dict[str, UserRow] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> UserRow | None:
        return self._rows.get(name)

    def put(self, row: UserRow) -> None:
        self._rows[row.user.name] = row

    def insert(self, row: UserRow) -> bool:
        with self._lock:
            if row.user.name in self._rows:
                return False
            self._rows[row.user.name] = row
            return True

    def delete(self, name: str) -> bool:
        return self._rows.pop(name, None) is not None

    def all(self) -> list[UserRow]:
        return list(self._rows.values())
