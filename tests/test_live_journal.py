"""The live router as a journal: several processes (several state objects over one
store) interleave routing operations; replaying the journal alone, or any snapshot plus
the journal after it, gives exactly the router every process holds (``to_dict`` equal).
Clocks that run behind are clamped and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_routing_properties import make_policy

from ivr.live.journal import Command, replay
from ivr.live.routing_store import CLAMPS, HISTORY
from routing import Agent, AgentState, Call, Router, RoutingError

POLICY = make_policy(30.0)
QUEUES = sorted(POLICY.queues)

op_st = st.tuples(
    st.integers(0, 2),  # which process
    st.sampled_from(["enqueue"] * 4 + ["accept"] * 3 + ["complete"] * 2
                    + ["reject", "timeout", "abandon", "available", "break", "tick",
                       "context", "reset", "bad"]),
    st.integers(0, 50),  # picks a call, agent or queue
    st.floats(-3.0, 12.0),  # time step: negative = this host's clock is behind
    st.booleans(),  # a routing error escapes the update (rolled back) or is caught inside
)


def _states(b: Backend, n: int, every: int) -> list[Any]:
    """``n`` processes' routing states over one store."""
    return [b.routing(b.store(), POLICY, snapshot_every=every, snapshot_seconds=1e9)
            for _ in range(n)]


def _pick(items: list[Any], k: int) -> Any:
    return items[k % len(items)] if items else None


def _operate(router: Any, kind: str, k: int, now: float, n: int) -> None:
    calls = sorted(router.calls.values(), key=lambda c: c.id)
    reserved = [c for c in calls if c.state.value == "reserved"]
    if kind == "enqueue":
        router.enqueue(Call(id=f"c{n}", queue=_pick(QUEUES, k),
                            language=_pick(["en", "es", None], k)), now)
    elif kind in ("accept", "reject", "timeout") and reserved:
        c = _pick(reserved, k)
        getattr(router, kind)(c.id, c.agent_id, now)
    elif kind == "complete":
        c = _pick([c for c in calls if c.state.value == "connected"], k)
        if c is not None:
            router.complete(c.id, now)
    elif kind == "abandon" and calls:
        router.abandon(_pick(calls, k).id, now)
    elif kind in ("available", "break"):
        router.set_agent_state(f"a{k % 5}", kind if kind == "break" else "available", now)
    elif kind == "tick":
        router.tick(now)
    elif kind == "context" and calls:
        router.set_context(_pick(calls, k).id, "note", {"k": k})
    elif kind == "reset":
        router.reset_stats()
    elif kind == "bad":  # an operation the router refuses
        router.accept("no-such-call", "a0", now)


def _seed(state: Any) -> None:
    with state.update() as router:
        for i in range(5):
            router.add_agent(Agent(id=f"a{i}", skills={"a": 1 + i % 4, "b": 3, "c": 2 + i % 3},
                                   languages={"en"} if i % 2 else {"en", "es"}, capacity=1 + i % 2,
                                   presence=AgentState.AVAILABLE), 0.0)


def _journal(b: Backend) -> tuple[list[tuple], dict[int, dict]]:
    rows = b.rows("SELECT seq, stamp, at, op, args FROM routing_journal ORDER BY seq")
    snaps = {s: json.loads(d) for s, d in b.rows("SELECT seq, data FROM routing_snapshots")}
    return rows, snaps


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """A new, empty store per hypothesis example."""
    made: list[Backend] = []

    def make() -> Backend:
        if request.param == "sqlite":
            b = Backend("sqlite", tmp_path_factory.mktemp("journal") / "ivr.sqlite3")
        else:
            b = Backend("postgres", request.getfixturevalue("pg_url")())
        made.append(b)
        return b

    yield make
    for b in made:
        b.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op_st, min_size=1, max_size=40), every=st.integers(2, 9))
def test_any_interleaving_replays_to_what_every_process_holds(fresh_backend, ops, every):
    db = fresh_backend()
    states = _states(db, 3, every)
    records: dict[int, tuple] = {}  # every record ever written (the journal is pruned)
    snapshots: dict[int, dict] = {}
    _seed(states[0])
    rows, snapshots = _journal(db)
    records.update({r[0]: r for r in rows})
    clocks = [100.0, 100.0, 100.0]
    for n, (p, kind, k, step, escape) in enumerate(ops):
        clocks[p] += step
        try:
            with states[p].update() as router:
                try:
                    _operate(router, kind, k, clocks[p], n)
                except RoutingError:
                    if escape:
                        raise
        except RoutingError:
            pass
        rows, snaps = _journal(db)
        records.update({r[0]: r for r in rows})
        snapshots.update(snaps)

    held = [s.query(lambda r: r.to_dict()) for s in states]
    assert held[0] == held[1] == held[2]
    commands = [Command(op, json.loads(args), at) for _, _, at, op, args in
                (records[s] for s in sorted(records))]
    assert sorted(records) == list(range(1, len(records) + 1)), "no gap in the journal"
    ats = [c.now for c in commands]
    assert ats == sorted(ats), "the journal's clock never goes back"
    # the journal alone
    assert replay(Router(POLICY, history_limit=HISTORY), commands).to_dict() == held[0]
    # any snapshot plus the journal after it
    for seq, data in snapshots.items():
        restored = replay(Router.from_dict(data, history_limit=HISTORY), commands[seq:])
        assert restored.to_dict() == held[0], f"snapshot at {seq}"
    # a process that starts now, from the store alone
    assert _states(db, 1, every)[0].query(lambda r: r.to_dict()) == held[0]
    Router.from_dict(held[0]).check_invariants()


def test_a_command_whose_clock_is_behind_is_clamped_and_counted(backend, caplog):
    db = backend
    ahead, behind = _states(db, 2, 100)
    _seed(ahead)
    with ahead.update() as router:
        router.enqueue(Call(id="c1", queue="qa"), 200.0)
    with behind.update() as router:  # this host's clock is 50 s behind
        router.enqueue(Call(id="c2", queue="qa"), 150.0)
        assert router.calls["c2"].enqueued_at == 200.0
    rows, _ = _journal(db)
    assert [r[2] for r in rows][-2:] == [200.0, 200.0]
    assert behind.meta(CLAMPS) == "1" and behind.stats.clamped == 1 and ahead.stats.clamped == 0
    assert [r.behind_s for r in caplog.records] == [50.0]  # a clock problem: logged
    caplog.clear()
    with behind.update() as router:  # two requests took the lock in the other order
        router.enqueue(Call(id="c3", queue="qa"), 199.8)
    assert behind.meta(CLAMPS) == "2" and caplog.records == []  # counted, not logged


def test_a_rolled_back_operation_is_not_kept_by_its_process(backend):
    """A call step whose transaction rolls back after routing: the process's router must
    not keep the operation that never reached the journal."""
    db = backend
    store = db.store()
    mine, other = db.routing(store, POLICY), _states(db, 1, 100)[0]
    _seed(mine)
    with pytest.raises(RuntimeError), store.transaction("c1"):
        with mine.update() as router:
            router.enqueue(Call(id="c1", queue="qa"), 10.0)
        raise RuntimeError("the step failed after routing")
    with other.update() as router:
        router.enqueue(Call(id="c2", queue="qa"), 11.0)
    assert "c1" not in mine.read().calls and "c2" in mine.read().calls
    assert mine.read().to_dict() == other.read().to_dict()


def test_snapshots_prune_the_journal_behind_the_previous_one(backend):
    db = backend
    (state,) = _states(db, 1, 10)
    _seed(state)  # records 1-5
    for i in range(34):
        with state.update() as router:
            router.enqueue(Call(id=f"c{i}", queue="qa"), 10.0 + i)
    rows, snaps = _journal(db)
    assert sorted(snaps) == [20, 30]
    assert [r[0] for r in rows] == list(range(21, 40))


def test_every_router_operation_is_journaled():
    """A new Router method that changes state must be a journal op, or the live layer
    would change one process's router without telling the others."""
    from ivr.live.journal import OPS, READS, RecordingRouter

    public = {n for n in dir(Router) if not n.startswith("_") and callable(getattr(Router, n))}
    recorded = {n for n in vars(RecordingRouter) if not n.startswith("_")}
    assert public - READS <= recorded and OPS <= recorded

    class Newer(Router):
        def sneak(self) -> None:  # a new operation nobody journaled yet
            self.calls.clear()

    recording = RecordingRouter(Newer(POLICY), lambda op, args, now: now)
    assert recording.policy is POLICY and recording.calls == {}
    assert recording.stats("qa", 0.0).waiting == 0  # reads pass through
    with pytest.raises(AttributeError, match="Router.sneak is not a journaled operation"):
        recording.sneak()


def test_frequent_snapshots_never_make_a_process_a_little_behind_reload(backend):
    """Processes that snapshot often (by age) still leave a full interval of journal, so
    another process a few records behind replays them instead of reloading everything."""
    slow, fast = _states(backend, 2, 10)
    _seed(slow)
    slow.read()
    reloads = slow.stats.reloads
    for i in range(6):
        fast.snapshot_seconds = -1.0  # every update of this process writes a snapshot
        with fast.update() as router:
            router.enqueue(Call(id=f"c{i}", queue="qa"), 10.0 + i)
    assert slow.read().to_dict() == fast.read().to_dict()
    assert slow.stats.reloads == reloads and slow.stats.applied >= 6


def test_snapshots_are_written_off_the_routing_lock(backend):
    """A snapshot is the shadow router serialised outside the lock: updates of other
    threads go on meanwhile, and it equals the journal replayed to its record."""
    import threading
    import time

    (state,) = _states(backend, 1, 10)
    state.background_snapshots = True
    _seed(state)
    serialising = threading.Event()
    resume = threading.Event()
    real_to_dict = Router.to_dict

    def slow_to_dict(self: Router) -> dict:
        if threading.current_thread().name == "ivr-snapshot":
            serialising.set()
            assert resume.wait(10)
        return real_to_dict(self)

    Router.to_dict = slow_to_dict  # type: ignore[method-assign]
    try:
        for i in range(5):  # record 10 makes a snapshot due
            with state.update() as router:
                router.enqueue(Call(id=f"c{i}", queue="qa"), 10.0 + i)
        assert serialising.wait(10), "no snapshot was started"
        started = time.perf_counter()
        with state.update() as router:  # the lock is free while the snapshot serialises
            router.enqueue(Call(id="during", queue="qa"), 20.0)
        assert time.perf_counter() - started < 5
        resume.set()
        deadline = time.monotonic() + 10
        while not _journal(backend)[1] and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        Router.to_dict = real_to_dict  # type: ignore[method-assign]
        resume.set()
    rows, snaps = _journal(backend)
    assert list(snaps) == [10]
    restored = replay(Router.from_dict(snaps[10], history_limit=HISTORY),
                      (Command(op, json.loads(args), at) for _, _, at, op, args in rows
                       if _ > 10))
    assert restored.to_dict() == state.read().to_dict()
    assert "during" in state.read().calls


def test_a_snapshot_written_in_pieces_is_the_json_of_the_router():
    from ivr.live.routing_store import _dumps_in_pieces

    router = Router(POLICY, history_limit=HISTORY)
    for i in range(100):
        router.add_agent(Agent(id=f"a{i}", skills={"a": 1 + i % 4}, languages={"en"},
                               presence=AgentState.AVAILABLE), 0.0)
    for i in range(150):
        router.enqueue(Call(id=f"c{i}", queue=QUEUES[i % len(QUEUES)]), 1.0 + i)
    data = router.to_dict()
    assert json.loads(_dumps_in_pieces(data)) == json.loads(json.dumps(data))


def test_a_question_asked_before_an_operation_commits_does_not_reload(backend):
    """One thread's call step has run a routing operation but not committed yet; another
    thread's question is answered from the process's router as it is, without reloading
    it from the snapshot (0.8 s at 10,000 agents, with the process's operations waiting)."""
    import threading

    store = backend.store()
    state = backend.routing(store, POLICY, snapshot_every=1000, snapshot_seconds=1e9)
    _seed(state)
    state.read()
    reloads = state.stats.reloads
    applied, commit = threading.Event(), threading.Event()

    def call_step() -> None:
        with store.transaction("CA" + "0" * 32):  # the call's transaction, left open
            with state.update() as router:
                router.enqueue(Call(id="open", queue="qa"), 5.0)
            applied.set()
            assert commit.wait(10)

    worker = threading.Thread(target=call_step)
    worker.start()
    try:
        assert applied.wait(10)
        assert "open" in state.query(lambda r: set(r.calls))
        assert state.stats.reloads == reloads
    finally:
        commit.set()
        worker.join(10)
    assert "open" in state.query(lambda r: set(r.calls)) and state.stats.reloads == reloads


def test_enqueue_brief_is_journaled_as_enqueue():
    """The simulator's ``enqueue_brief``, called through the live layer, is written down
    as the ``enqueue`` it is equivalent to: replaying the journal gives the same router."""
    from ivr.live.journal import RecordingRouter

    seen: list[Command] = []

    def record(op: str, args: dict[str, Any], now: float) -> float:
        seen.append(Command(op, json.loads(json.dumps(args)), now))
        return now

    live = RecordingRouter(Router(POLICY), record)
    skills = {s: 5 for spec in POLICY.queues.values() for s in spec.skills}
    live.add_agent(Agent("a1", skills, presence=AgentState.AVAILABLE), 0.0)
    assert live.enqueue_brief(Call.for_queue("c1", QUEUES[0], 1), 1.0) == "a1"
    assert live.enqueue_brief(Call.for_queue("c2", QUEUES[0]), 2.0) is None
    assert [c.op for c in seen] == ["add_agent", "enqueue", "enqueue"]
    copy = replay(Router(POLICY), seen)
    assert copy.to_dict(history=False) == live._router.to_dict(history=False)
