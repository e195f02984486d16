"""Store parity: the call store and the live routing behave the same on SQLite (one
host) and on PostgreSQL (several hosts); every test here runs against both."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
import time

import pytest
from conftest import OPEN
from fake_twilio import FakeTwilioAPI
from test_live_routing import AGENT_AUTH, Center, redirect_target

from ivr.engine.session import Session
from ivr.errors import StoreError


def _session(call_id: str, turn: int, route: dict | None = None) -> Session:
    return Session(call_id=call_id, flow_id="bank", flow_version="v1", node="menu", turn=turn,
                   route=route, started_at=OPEN, updated_at=OPEN)


def test_a_step_is_stored_with_its_answer_route_and_events(backend):
    store = backend.store()
    assert store.get_session("CA1") is None
    with store.transaction("CA1") as record:
        assert record.session is None and record.response(1) is None
        record.save(_session("CA1", 1, {"queue": "cards", "skills": {}}), "<Response/>",
                    [{"kind": "step", "node": "menu"}, {"kind": "route", "queue": "cards"}])
    other = backend.store()  # another process, or another host
    assert other.get_session("CA1").turn == 1
    with other.transaction("CA1") as record:
        assert record.session.node == "menu" and record.response(1) == "<Response/>"
    assert other.route_request("CA1") == {"queue": "cards", "skills": {}}
    assert [e["kind"] for e in other.events("CA1")] == ["step", "route"]
    at = OPEN.timestamp()  # the session's clock, which reports and replays ask by
    assert [x.call_id for x in other.sessions_since(at - 60)] == ["CA1"]
    assert other.sessions_since(at + 60) == [] and other.sessions_since(0, at) == []
    other.ping()


def test_a_failed_step_leaves_nothing(backend):
    store = backend.store()
    with pytest.raises(RuntimeError), store.transaction("CA2") as record:
        record.save(_session("CA2", 1), "<Response/>", [{"kind": "step"}])
        raise RuntimeError("the step failed")
    assert store.get_session("CA2") is None and store.events("CA2") == []


def test_steps_of_one_call_never_interleave(backend):
    """Two processes take the same call's step at once: the second waits for the first
    and sees its turn (a repeated webhook is answered once)."""
    first, second = backend.store(), backend.store()
    order: list[str] = []
    entered = threading.Event()

    def slow() -> None:
        with first.transaction("CA3") as record:
            entered.set()
            time.sleep(0.3)
            record.save(_session("CA3", 1), "<Response>1</Response>", [])
            order.append("first")

    t = threading.Thread(target=slow)
    t.start()
    entered.wait(5)
    with second.transaction("CA3") as record:
        order.append("second")
        assert record.session is not None and record.response(1) == "<Response>1</Response>"
    t.join()
    assert order == ["first", "second"]


def test_an_unusable_store_says_so():
    from ivr.live.postgres import PostgresDatabase, PostgresStore

    store = PostgresStore(PostgresDatabase("postgresql://nobody@127.0.0.1:1/none",
                                           timeout_s=0.5))
    with pytest.raises(StoreError, match="cannot reach PostgreSQL at postgresql://nobody@"):
        store.ping()


@pytest.fixture
def center_on(backend, tmp_path):
    with FakeTwilioAPI() as api:
        if backend.name == "sqlite":
            yield Center(api, data_dir=tmp_path / "var")
        else:
            yield Center(api, database_url=str(backend.where))


def test_a_call_is_routed_connected_and_completed(center_on, backend, tmp_path, capsys):
    from ivr.cli import main

    center = center_on
    center.agent("bob", {"cards": 5}, "client:bob")
    center.agent("alice", {"cards": 3}, "client:alice")
    sid = center.call(["2"])
    assert redirect_target(center.api.requests[0])[1]["agent"] == ["bob"]
    center.twilio(f"/voice/agent-done?call={sid}&agent=bob",
                  {"CallSid": sid, "DialCallStatus": "no-answer"})
    assert redirect_target(center.api.requests[1])[1]["agent"] == ["alice"]
    center.twilio(f"/voice/whisper?call={sid}&agent=alice", {"CallSid": "CA" + "9" * 32})
    center.twilio(f"/voice/agent-done?call={sid}&agent=alice",
                  {"CallSid": sid, "DialCallStatus": "completed"})
    router = center.router()
    assert sid not in router.calls and router.agents["alice"].state.value == "wrap_up"
    stored = center.client.get(f"/calls/{sid}/decisions", headers=AGENT_AUTH).json["decisions"]
    assert [(d["kind"], d["agent_id"]) for d in stored] == [
        ("offered", "bob"), ("timed_out", "bob"), ("offered", "alice"), ("accepted", "alice"),
        ("completed", "alice")]
    where = (["--database-url", str(backend.where)] if backend.name == "postgres"
             else ["--data-dir", str(tmp_path / "var")])
    assert main(["route", "explain", sid, "--json", *where]) == 0  # from any host's shell
    assert [d["kind"] for d in json.loads(capsys.readouterr().out)] == [
        "offered", "timed_out", "offered", "accepted", "completed"]


def test_due_timers_fire_once_whichever_host_ticks(center_on, backend, tmp_path):
    """Two hosts over one store both run the router's timers: an offer that times out is
    moved on once, by one of them, and both hold the same router."""
    center = center_on
    with FakeTwilioAPI() as api2:
        other = (Center(api2, data_dir=tmp_path / "var") if backend.name == "sqlite"
                 else Center(api2, database_url=str(backend.where)))
        center.agent("bob", {"cards": 5}, "client:bob")
        center.agent("alice", {"cards": 3}, "client:alice")
        sid = center.call(["2"])
        later = OPEN + dt.timedelta(seconds=20)  # past bob's 15 s offer timeout
        center.now = other.now = later
        hosts = [center.app.extensions["ivr.routing"], other.app.extensions["ivr.routing"]]
        effects = [h.tick(later) for h in hosts] + [h.tick(later) for h in hosts]
        fired = [e for e in effects if e]
        assert len(fired) == 1 and fired[0][0].agent_id == "alice"
        assert center.router().to_dict() == other.router().to_dict()
        assert [(d["kind"], d["agent_id"]) for d in hosts[1].explain(sid)] == [
            ("offered", "bob"), ("timed_out", "bob"), ("offered", "alice")]


def test_db_upgrade_migrates_a_database_of_the_previous_release(pg_server, monkeypatch):
    """A database made by release 1 (calls and router only) gets the later tables, and
    keeps its rows."""
    import psycopg

    from ivr.live import postgres

    schema = "ivr_test_migrate_" + secrets.token_hex(4)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{pg_server}?options=-csearch_path%3D{schema}"
    try:
        old = postgres.PostgresDatabase(url, max_size=1)
        monkeypatch.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:1])
        assert old.upgrade() == [1]
        with old.transaction() as conn:
            conn.execute("INSERT INTO agent_contacts VALUES ('a1', 'client:a1')")
        monkeypatch.undo()
        assert old.upgrade() == list(range(2, postgres.LATEST + 1))
        old.check_current()
        with old.reading() as conn:
            assert conn.execute("SELECT contact FROM agent_contacts").fetchall() == [("client:a1",)]
            assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        old.close()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def test_db_upgrade_creates_the_schema_once_and_serve_refuses_a_database_behind(
        pg_server, tmp_path, capsys):
    import psycopg

    from ivr.cli import main
    from ivr.live.postgres import LATEST, PostgresDatabase

    schema = "ivr_test_upgrade_" + secrets.token_hex(4)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    url = f"{pg_server}?options=-csearch_path%3D{schema}"
    try:
        db = PostgresDatabase(url, max_size=1)
        with pytest.raises(StoreError, match="schema version 0, this code needs .*ivr db upgrade"):
            db.check_current()
        assert main(["db", "upgrade", "--database-url", url]) == 0
        every = ", ".join(str(v) for v in range(1, LATEST + 1))
        assert capsys.readouterr().out == f"PostgreSQL schema at version {LATEST} (applied: {every})\n"
        assert main(["db", "upgrade", "--database-url", url]) == 0
        assert "applied: none needed" in capsys.readouterr().out
        db.check_current()
        db.close()
    finally:
        with psycopg.connect(pg_server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
    assert main(["db", "upgrade", "--data-dir", str(tmp_path / "var")]) == 0
    assert (tmp_path / "var" / "ivr.sqlite3").is_file()
    assert main(["db", "upgrade", "--database-url", "mysql://x"]) == 1
    assert "must start with postgresql://" in capsys.readouterr().err


def test_outbox_users_and_floor_events_are_shared_by_the_hosts(backend):
    """What several hosts must share besides the calls and the router: a REST intent is
    claimed by one sender of all the hosts' senders, a user added on one host signs in on
    another (and its lock-out counts there too), a hold recorded on one is seen by all."""
    from concurrent.futures import ThreadPoolExecutor

    from ivr.floor import FloorEvent
    from ivr.live import stores
    from ivr.live.outbox import Intent
    from ivr.users import UserError

    clock = lambda: dt.datetime(2026, 12, 1, 12, tzinfo=dt.timezone.utc)  # noqa: E731
    one, two = backend.store(), backend.store()
    intent = Intent("connect:CA1:bob:7", "connect", "CA1", "bob")
    stores.outbox_of(one).add([intent, intent], 0.0)
    stores.outbox_of(two).add([intent], 1.0)  # the same decision recorded again: one intent
    senders = [stores.outbox_of(s) for s in (one, two) for _ in range(4)]
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda o: o.claim(10.0), senders))
    assert sum(len(c) for c in claims) == 1
    assert stores.outbox_of(two).delivered("CA1", "bob") is False
    assert stores.outbox_of(one).failed(intent.key, "timeout", 10.0) is False  # retried later
    assert stores.outbox_of(two).claim(10.1) == []  # backing off
    (again,) = stores.outbox_of(two).claim(20.0)
    stores.outbox_of(two).sent([again.key])
    assert stores.outbox_of(one).delivered("CA1", "bob") is True
    assert stores.outbox_of(one).counts() == {"sent": 1}
    assert stores.outbox_of(two).prune(0.5) == 1 and stores.outbox_of(one).counts() == {}

    stores.open_users(one, clock).add("ana", "agent", "correct horse battery", agent_id="a1")
    users = stores.open_users(two, clock)
    assert users.verify("ana", "correct horse battery").agent_id == "a1"
    with pytest.raises(UserError, match="ana"):
        users.add("ana", "agent", "another password here")
    for _ in range(5):
        assert stores.open_users(one, clock).verify("ana", "wrong") is None
    assert users.locked("ana")  # the failures on one host lock the name on the other

    stores.open_floor_log(one).add(FloorEvent("CA1", "a1", 5.0, "hold"))
    seen = stores.open_floor_log(two)
    assert [(e.kind, e.agent_id) for e in seen.events(call_id="CA1")] == [("hold", "a1")]
    assert seen.last_id() >= 1 and seen.events(since=6.0) == []


def test_a_flow_published_on_one_host_is_live_on_every_host(backend):
    """Flow versions live in the hosts' shared database: a version saved and published on
    one host is what the other serves, stored versions stay immutable, and two hosts
    seeding the same file at once make one version, not two."""
    from concurrent.futures import ThreadPoolExecutor

    from ivr.live import stores

    one, two = stores.open_versions(backend.store()), stores.open_versions(backend.store())
    before = two.live_stamp()
    v1 = one.record("q", "q.yaml", "a: 1\n", "ann", "first", now=1.0)
    one.publish("q", v1.version, "ann", now=2.0)
    assert two.live()["q"].text == "a: 1\n" and two.live_stamp() != before
    v2 = two.record("q", "q.yaml", "a: 2\n", "bob", "second", now=3.0)
    assert v2.version == 2 and one.get("q", 2).author == "bob"
    one.publish("q", 2, "ann", now=4.0, action="rollback")
    assert [h["version"] for h in two.history("q")] == [2, 1]
    assert [a["action"] for a in two.audit("q")] == ["save", "publish", "save", "rollback"]
    with pytest.raises(Exception, match="immutable"):
        backend.rows("UPDATE flow_versions SET text = 'x' WHERE version = 1")
    with pytest.raises(Exception, match="immutable"):
        backend.rows("DELETE FROM flow_versions")
    two.save_draft("q", "a: 3\n", "bob", now=5.0)
    assert one.draft("q").text == "a: 3\n"
    one.drop_draft("q")
    assert two.draft("q") is None

    hosts = [stores.open_versions(backend.store()) for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda v: v.adopt("seeded", "s.yaml", "b: 1\n", "files",
                                               "from the file", now=6.0), hosts))
    assert sum(m is not None for m in made) == 1
    assert [h["version"] for h in one.history("seeded")] == [1]


def test_reports_read_the_calls_of_the_range_asked_for(backend):
    """`ivr report` and `/reports` read sessions by their time index on both backends:
    a call of the range is counted, calls before and long after it are not read."""
    from conftest import FLOWS

    from ivr.floor import MemoryFloorLog
    from ivr.live.routing import routing_policy
    from ivr.report import collect

    store = backend.store()
    day = dt.timedelta(days=1)
    for call_id, started in (("CA-before", OPEN - day), ("CA-in", OPEN),
                             ("CA-later", OPEN + 5 * day)):
        session = _session(call_id, 1).model_copy(
            update={"started_at": started, "updated_at": started + dt.timedelta(minutes=3)})
        with store.transaction(call_id) as record:
            record.save(session, "<Response/>", [])
    start, end = OPEN - dt.timedelta(hours=1), OPEN + dt.timedelta(hours=1)
    read = backend.store().sessions_since(start.timestamp(), end.timestamp() + 86400)
    assert [s.call_id for s in read] == ["CA-in"]
    facts = collect(backend.store(), lambda call_id: [], MemoryFloorLog(),
                    routing_policy(FLOWS, {}), start, end)
    assert [f.call_id for f in facts] == ["CA-in"]
