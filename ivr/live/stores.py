"""Where each kind of live state is kept, from the settings: one place that picks the
backend (PostgreSQL when a database URL is set, SQLite in the data dir, or memory) for the
calls, the routing journal, the REST outbox, users, floor events and flow versions, for the
server and the commands alike."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Callable

from ivr.errors import IVRError
from ivr.floor import ROOM_TABLE, FloorLog, MemoryFloorLog, SqlFloorLog
from ivr.flows.versions import VersionStore
from ivr.live.calls_store import MemoryStore, SQLiteStore, Store
from ivr.live.outbox import MemoryOutbox, Outbox, SqlOutbox
from ivr.live.routing_store import (
    JournalRoutingState,
    MemoryRoutingState,
    RoutingState,
    SQLiteRoutingState,
)
from ivr.users import MemoryUserTable, SqlUserTable, Users, UserTable
from routing import RoutingPolicy

if TYPE_CHECKING:  # importing ivr.web runs its app module, which imports this one
    from ivr.web.settings import Settings


def open_versions(store: Store) -> VersionStore:
    """Flow versions beside the calls: in the SQLite store's file, in PostgreSQL (a flow
    published on one host is live on every host), else in memory."""
    if isinstance(store, SQLiteStore):
        return VersionStore(store.path)
    from ivr.live.postgres import PostgresConnect, PostgresStore

    if isinstance(store, PostgresStore):
        connect = PostgresConnect(store.db)
        return VersionStore.on(connect, connect.write_flows, where=store.db.where)
    return VersionStore(":memory:")


def open_store(settings: Settings) -> Store:
    """PostgreSQL when a database URL is set (several hosts), else SQLite in the data dir
    (one host), or memory (one process)."""
    if settings.database_url:
        from ivr.live.postgres import PostgresDatabase, PostgresStore

        db = PostgresDatabase(settings.database_url)
        db.check_current()
        return PostgresStore(db)
    if settings.store == "memory":
        return MemoryStore()
    return SQLiteStore(settings.data_dir / "ivr.sqlite3",
                       busy_timeout_s=settings.store_busy_timeout_s)


def open_existing(settings: Settings) -> Store:
    """The store a server has written, for the commands that read it (``ivr report``,
    ``ivr route explain``, ``ivr flows history``): an :class:`IVRError` naming the file
    when there is no SQLite store in the data dir and no database URL."""
    path = settings.data_dir / "ivr.sqlite3"
    if not settings.database_url and not path.is_file():
        raise IVRError(f"no store at {path} (start the server once, give --data-dir or "
                       "IVR_DATA_DIR, or IVR_DATABASE_URL)")
    return open_store(settings)


def location(store: Store) -> str:
    """Where a store keeps its data, for messages (a URL without its password)."""
    from ivr.live.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return store.db.where
    return str(store.path) if isinstance(store, SQLiteStore) else "memory"


def routing_state(store: Store, policy: RoutingPolicy) -> RoutingState:
    """The shared router's journal in the same database as the calls."""
    if isinstance(store, SQLiteStore):
        return SQLiteRoutingState(store.connection, policy)
    from ivr.live.postgres import PostgresRoutingDB, PostgresStore

    if isinstance(store, PostgresStore):
        return JournalRoutingState(PostgresRoutingDB(store.db), policy)
    return MemoryRoutingState(policy)


def open_users(store: Store, clock: Callable[[], dt.datetime]) -> Users:
    """Users in the SQLite store's file, or in memory beside the memory store."""
    table: UserTable = (SqlUserTable(connect) if (connect := sql_tables(store))
                        else MemoryUserTable())
    return Users(table, clock=lambda: clock().timestamp())


def open_floor_log(store: Store) -> FloorLog:
    """Holds, transfers and dispositions beside the calls they belong to."""
    connect = sql_tables(store)
    return SqlFloorLog(connect) if connect else MemoryFloorLog()


def open_room_log(store: Store) -> FloorLog:
    """The conference rooms' status callbacks (``IVR_AGENT_BRIDGE=conference``)."""
    connect = sql_tables(store)
    return SqlFloorLog(connect, ROOM_TABLE) if connect else MemoryFloorLog()


def sql_tables(store: Store) -> Callable[[], Any] | None:
    """The connection maker of the store's database for its small tables (users, floor
    events, outbox), or None for the memory store."""
    if isinstance(store, SQLiteStore):
        return store.connection
    from ivr.live.postgres import PostgresConnect, PostgresStore

    return PostgresConnect(store.db) if isinstance(store, PostgresStore) else None


def outbox_of(store: Store) -> Outbox:
    """The REST outbox in the store's database, shared by its workers and hosts."""
    connect = sql_tables(store)
    if connect is None:
        return MemoryOutbox()
    write = getattr(connect, "write", None)  # PostgreSQL's transaction; SQLite's by default
    return SqlOutbox(connect, write)
