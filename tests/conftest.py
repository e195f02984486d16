"""Shared fixtures: the example flows, fixed clocks, apps and signed clients."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import tempfile
import textwrap
from pathlib import Path
from typing import Callable

import pytest

import ivr.users
from ivr.console import FlaskTransport, TwimlCaller
from ivr.live.calls_store import MemoryStore
from ivr.loopback import always_open_flows  # noqa: F401 (tests import it from here)
from ivr.web import create_app
from ivr.web.settings import Settings

# Passwords: the real scrypt, at a lower cost than production's so that the suite's
# sign-ins stay fast on a loaded machine (servers started as subprocesses keep the default).
ivr.users.SCRYPT_N = 2 ** 10

# Trained intent models are cached by content hash; tests keep theirs out of $HOME.
os.environ.setdefault("IVR_CACHE_DIR", tempfile.mkdtemp(prefix="ivr-test-cache-"))

ROOT = Path(__file__).resolve().parent.parent
FLOWS = ROOT / "flows"
TWIML_XSD = ROOT.parent / "shared" / "data" / "twiml" / "twiml_v20100401_twilioRealtimeCallSchema.xsd"
NY = dt.timezone(dt.timedelta(hours=-5))
#: A Monday at 10:00 in New York: the bank is open.
OPEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=NY)
#: A Sunday at 10:00: closed.
CLOSED = dt.datetime(2026, 11, 22, 10, 0, tzinfo=NY)
KNOWN_CALLER = "+14155550102"  # James, in flows/data/customers.csv
UNKNOWN_CALLER = "+15005550006"


def call_sid() -> str:
    return "CA" + secrets.token_hex(16)


@pytest.fixture
def write_flow(tmp_path: Path) -> Callable[..., Path]:
    """Write a flow YAML (dedented) into a fresh folder; returns its path."""

    def write(text: str, name: str = "flow.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


class Phone:
    """An app in-process plus a TwiML-following caller with scripted answers."""

    def __init__(self, flows_dir: Path = FLOWS, at: dt.datetime = OPEN,
                 default_flow: str | None = None) -> None:
        self.token = secrets.token_hex(16)
        self.store = MemoryStore()
        self.now = at
        self.app = create_app(
            Settings(flows_dir=flows_dir, store="memory", auth_token=self.token,
                     reload_interval_s=0, default_flow=default_flow),
            store=self.store, clock=lambda: self.now)
        self.transport = FlaskTransport(self.app, self.token)

    def call(self, answers: list[str | None], caller: str = UNKNOWN_CALLER,
             called: str = "+14155550100", after_queue: str | None = None):
        script = list(answers)

        def answer(prompts: list[str]) -> str | None:
            return script.pop(0) if script else None

        result = TwimlCaller(self.transport, answer, after_queue=after_queue).call(
            call_sid(), caller, called)
        return result, self.store.get_session(result.call_sid)


@pytest.fixture
def phone() -> Phone:
    return Phone()


@pytest.fixture(scope="session")
def twiml_schema():
    xmlschema = pytest.importorskip("xmlschema")
    if not TWIML_XSD.is_file():
        pytest.skip(f"TwiML schema not found at {TWIML_XSD} (../shared beside the repo)")
    return xmlschema.XMLSchema(str(TWIML_XSD))


# ------------------------------------------------------------------ PostgreSQL

PG_URL = os.environ.get("IVR_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_unavailable() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure to reach the server
        return f"no PostgreSQL at {PG_URL} ({type(exc).__name__}: {str(exc).strip()[:120]})"
    return None


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The test server's URL. In CI (``CI`` set) a missing server fails the test; locally
    the test is skipped with the reason."""
    problem = _pg_unavailable()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"{problem}: PostgreSQL tests must run in CI (see .ci/run)")
        pytest.skip(problem)
    return PG_URL


@pytest.fixture
def pg_url(pg_server: str) -> Callable[[], str]:
    """Make a fresh, migrated schema (dropped after the test); returns a URL whose
    connections use it, so parallel runs and tests never see each other's rows."""
    import psycopg

    from ivr.live.postgres import PostgresDatabase

    made: list[str] = []

    def make() -> str:
        schema = f"ivr_test_{secrets.token_hex(6)}"
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        made.append(schema)
        sep = "&" if "?" in pg_server else "?"
        url = f"{pg_server}{sep}options=-csearch_path%3D{schema}"
        db = PostgresDatabase(url, max_size=1)
        db.upgrade()
        db.close()
        return url

    yield make  # type: ignore[misc]
    with psycopg.connect(pg_server, autocommit=True) as conn:
        for schema in made:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


class Backend:
    """One store backend as the parity tests use it: each :meth:`store` is what one
    process (or host) would open."""

    def __init__(self, name: str, where: Path | str) -> None:
        self.name = name
        self.where = where
        self._opened: list[object] = []

    def store(self) -> object:
        if self.name == "sqlite":
            from ivr.live.calls_store import SQLiteStore

            return SQLiteStore(self.where)
        from ivr.live.postgres import PostgresDatabase, PostgresStore

        db = PostgresDatabase(str(self.where), max_size=2)
        self._opened.append(db)
        return PostgresStore(db)

    def routing(self, store: object, policy: object, **options: object) -> object:
        from ivr.live.routing_store import JournalRoutingState, SQLiteRoutingState

        if self.name == "sqlite":
            return SQLiteRoutingState(store.connection, policy, **options)  # type: ignore[attr-defined]
        from ivr.live.postgres import PostgresRoutingDB

        return JournalRoutingState(PostgresRoutingDB(store.db), policy, **options)  # type: ignore[attr-defined]

    def rows(self, sql: str) -> list[tuple]:
        """Rows of a plain query, straight from the database."""
        if self.name == "sqlite":
            import sqlite3

            conn = sqlite3.connect(self.where)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        import psycopg

        with psycopg.connect(str(self.where)) as conn:
            return conn.execute(sql).fetchall()

    def close(self) -> None:
        for db in self._opened:
            db.close()  # type: ignore[attr-defined]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """The same test against SQLite and PostgreSQL (store parity)."""
    if request.param == "sqlite":
        b = Backend("sqlite", tmp_path / "ivr.sqlite3")
    else:
        b = Backend("postgres", request.getfixturevalue("pg_url")())
    yield b  # type: ignore[misc]
    b.close()
