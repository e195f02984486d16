"""Several worker processes routing at once against one SQLite store: no agent is ever
reserved beyond capacity and no call is lost."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

from conftest import FLOWS

from ivr.live.calls_store import SQLiteStore
from ivr.live.routing_store import SQLiteRoutingState
from routing import Agent, AgentState, Call, load_policy

POLICY = load_policy(FLOWS / "routing.yaml")


def _state(path: Path) -> SQLiteRoutingState:
    return SQLiteRoutingState(SQLiteStore(path).connection, POLICY)


def _worker(path: str, worker: int, calls: int, barrier) -> None:
    state = _state(Path(path))
    barrier.wait()
    for k in range(calls):
        with state.update() as router:
            router.enqueue(Call(id=f"CA{worker:02d}{k:030d}", queue="billing"), 1000.0 + k)
        if k % 3 == 2:  # agents finish calls while others arrive
            with state.update() as router:
                held = sorted((c for c in router.calls.values() if c.state.value == "reserved"),
                              key=lambda c: c.id)
                if held:
                    router.accept(held[0].id, held[0].agent_id, 1000.5 + k)
                    router.complete(held[0].id, 1001.0 + k)


def test_processes_never_double_book_and_never_lose_a_call(tmp_path):
    db = tmp_path / "ivr.sqlite3"
    state = _state(db)
    with state.update() as router:
        for a in range(4):
            router.add_agent(Agent(id=f"a{a}", skills={"billing": 3}, languages={"en"},
                                   wrap_up_seconds=0, presence=AgentState.AVAILABLE), 0.0)
    workers, per_worker = 4, 12
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(str(db), w, per_worker, barrier))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    router = _state(db).read()
    router.check_invariants()
    for agent in router.agents.values():
        assert agent.load <= agent.capacity, agent.as_dict()
    calls = list(router.calls.values())
    reserved = [c for c in calls if c.state.value == "reserved"]
    waiting = [c for c in calls if c.state.value == "waiting"]
    assert router.stats("billing", 2000.0).as_dict()["offered"] == workers * per_worker
    completed = workers * (per_worker // 3)
    assert len(reserved) + len(waiting) + completed == workers * per_worker  # none lost
    assert sorted(c.agent_id for c in reserved) == ["a0", "a1", "a2", "a3"]  # one each
    # every decision any process made is stored once, in the order it was numbered
    stored = _state(db).decisions(reserved[0].id)
    seqs = [d["seq"] for d in stored]
    assert seqs == sorted(set(seqs)) and stored[0]["kind"] in ("offered", "queued")
