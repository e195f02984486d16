"""Flow versions: immutable history, publish, rollback, audit, file sync and the CLI."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from conftest import FLOWS

from ivr.cli import main
from ivr.errors import FlowError
from ivr.flows.loader import MAX_FLOW_BYTES, MAX_YAML_DEPTH, load_flow_text
from ivr.flows.publishing import check_draft, publish, rollback
from ivr.flows.versions import VersionStore, text_hash
from ivr.flows.versions_cli import versioned_registry

HISTORY_KEYS = {"version", "hash", "author", "created_at", "published_at", "message"}


@pytest.fixture
def folder(tmp_path):
    """A copy of the example flows (with the routing policy) and an empty data folder."""
    shutil.copytree(FLOWS, tmp_path / "flows")
    return tmp_path


def test_versions_are_immutable_and_identical_text_is_not_a_new_version():
    store = VersionStore(":memory:")
    v1 = store.record("q", "q.yaml", "a: 1\n", "ann", "first", now=1.0)
    assert store.record("q", "q.yaml", "a: 1\n", "bob", "again", now=2.0) == v1
    v2 = store.record("q", "q.yaml", "a: 2\n", "bob", "second", now=3.0)
    assert (v1.version, v2.version, v2.hash) == (1, 2, text_hash("a: 2\n"))
    store.publish("q", 2, "bob", now=4.0)
    assert [h["version"] for h in store.history("q")] == [2, 1]
    assert store.history("q")[0]["published_at"] == 4.0 and store.history("q")[1]["published_at"] is None
    with store._locked() as conn, pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE flow_versions SET text='x' WHERE version=1")
    with store._locked() as conn, pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("DELETE FROM flow_versions")
    with pytest.raises(Exception, match="no version 7"):
        store.publish("q", 7, "bob", now=5.0)


def test_files_seed_the_store_then_publish_and_rollback_move_what_new_calls_get(folder):
    registry = versioned_registry(folder / "flows", folder / "var")
    versions = registry.versions
    assert {h["author"] for h in versions.history("bank")} == {"files"}
    v1 = registry.get("quickstart")
    text = (folder / "flows" / "quickstart.yaml").read_text()
    new = publish(registry, "quickstart", text.replace("Thanks for calling.", "Hello."),
                  "ann", "friendlier greeting", now=100.0)
    assert new.version == 2
    served = registry.get("quickstart")
    assert served.version != v1.version and "Hello." in str(served.nodes["greet"])
    assert registry.get("quickstart", v1.version) is v1  # a call in progress keeps its version
    rollback(registry, "quickstart", 1, "bob", now=200.0)
    assert registry.get("quickstart").version == v1.version
    actions = [(a["action"], a["version"], a["actor"]) for a in versions.audit("quickstart")]
    assert actions == [("save", 1, "files"), ("publish", 1, "files"), ("save", 2, "ann"),
                       ("publish", 2, "ann"), ("rollback", 1, "bob")]
    # a second start on the same store changes nothing and serves the rolled-back version
    again = versioned_registry(folder / "flows", folder / "var")
    assert again.get("quickstart").version == v1.version
    assert len(again.versions.history("quickstart")) == 2


def test_publish_is_refused_while_the_draft_has_errors(folder):
    registry = versioned_registry(folder / "flows", folder / "var")
    text = (folder / "flows" / "quickstart.yaml").read_text()
    with pytest.raises(FlowError) as info:
        publish(registry, "quickstart", text.replace("next: to_sales", "next: to_saless"),
                "ann", "typo")
    assert "unknown node 'to_saless' (did you mean 'to_sales'?)" in info.value.problems[0]
    with pytest.raises(FlowError) as info:  # same checks as `ivr flows check`: the policy too
        publish(registry, "quickstart", text.replace("queue: sales", "queue: presales"),
                "ann", "new queue")
    assert "queue: 'presales' is not a queue of" in info.value.problems[0]
    with pytest.raises(FlowError, match="differs from the flow being edited"):
        publish(registry, "quickstart", text.replace("id: quickstart", "id: other"), "ann", "rename")
    assert len(registry.versions.history("quickstart")) == 1


def test_edited_files_become_published_versions_through_the_same_checks(folder):
    registry = versioned_registry(folder / "flows", folder / "var")
    path = folder / "flows" / "quickstart.yaml"
    path.write_text(path.read_text().replace("Thanks for calling.", "Howdy."))
    assert registry.refresh(now=10.0) is True
    history = registry.versions.history("quickstart")
    assert (history[0]["version"], history[0]["author"], history[0]["live"]) == (2, "file", True)
    path.write_text(path.read_text().replace("next: to_sales", "next: to_salez"))
    assert registry.refresh(now=20.0) is False
    assert len(registry.versions.history("quickstart")) == 2
    assert "to_salez" in registry.problems[0]


@pytest.mark.parametrize("text, words", [
    ("a:\n" + "".join("  " * k + f"- k{k}:\n" for k in range(1, MAX_YAML_DEPTH + 2)),
     "nested deeper than"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n", "too many values"),
    ("x: " + "y" * (MAX_FLOW_BYTES + 1), "too large"),
    ("a: !!python/object/apply:os.system ['true']\n", "YAML syntax error"),
])
def test_yaml_is_loaded_safely_within_limits(tmp_path, text, words):
    with pytest.raises(FlowError) as info:
        load_flow_text(text, tmp_path / "x.yaml")
    assert words in info.value.problems[0]


@pytest.mark.parametrize("change, words", [
    ("flow: verify_account", "flow: '../verify_account' must be the name of a flow"),
    ("csv: data/customers.csv", "sources.customers.csv: ../../etc/passwd is outside the flows"),
])
def test_a_draft_cannot_name_files_outside_the_flows_folder(folder, change, words):
    registry = versioned_registry(folder / "flows", folder / "var")
    text = (folder / "flows" / "bank.yaml").read_text()
    bad = (change.replace("verify_account", "../verify_account") if "flow:" in change
           else change.replace("data/customers.csv", "../../etc/passwd"))
    assert change in text
    flow, problems = check_draft(registry, "bank", text.replace(change, bad))
    assert flow is None and any(words in p for p in problems), problems


def test_cli_history_publish_rollback_and_export(folder, capsys, monkeypatch, backend):
    """The same commands on the data dir's SQLite file and on the hosts' PostgreSQL."""
    monkeypatch.delenv("IVR_FLOWS_DIR", raising=False)
    flags = ["--flows", str(folder / "flows"), "--data-dir", str(folder / "var")]
    if backend.name == "postgres":
        flags += ["--database-url", str(backend.where)]
    draft = folder / "draft" / "quickstart.yaml"
    draft.parent.mkdir()
    draft.write_text((folder / "flows" / "quickstart.yaml").read_text()
                     .replace("Thanks for calling.", "Hi!"))
    assert main(["flows", "publish", str(draft), "-m", "shorter", "--author", "ann", *flags]) == 0
    assert "published quickstart version 2" in capsys.readouterr().out
    assert main(["flows", "history", "quickstart", "--json", *flags]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [set(r) for r in rows] == [HISTORY_KEYS, HISTORY_KEYS]
    assert [(r["version"], r["author"], r["message"]) for r in rows] == [
        (2, "ann", "shorter"), (1, "files", "from file quickstart.yaml")]
    if backend.name == "postgres":  # in the shared database, not in the data dir
        assert backend.rows("SELECT max(version) FROM flow_versions "
                            "WHERE flow_id = 'quickstart'") == [(2,)]
        assert not (folder / "var" / "ivr.sqlite3").exists()
    assert main(["flows", "rollback", "quickstart", "1", *flags]) == 0
    assert main(["flows", "export", str(folder / "out"), *flags]) == 0
    capsys.readouterr()
    assert (folder / "out" / "quickstart.yaml").read_text() == (
        folder / "flows" / "quickstart.yaml").read_text()
    assert main(["flows", "history", "nosuch", *flags]) == 2
    assert "no flow 'nosuch'" in capsys.readouterr().err
    assert main(["flows", "rollback", "quickstart", "9", *flags]) == 1
    assert "no version 9 (versions: 2, 1)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["flows", "rollback", "quickstart", "zero", *flags])
    assert exit_info.value.code == 2


def test_another_process_finds_a_version_published_a_moment_ago(folder):
    """Two workers on one store: a call started on a version worker A just published
    continues on worker B with that version, before B's reload tick."""
    a = versioned_registry(folder / "flows", folder / "var")
    b = versioned_registry(folder / "flows", folder / "var")
    text = (folder / "flows" / "quickstart.yaml").read_text().replace("Thanks", "Hi, thanks")
    publish(a, "quickstart", text, "ann", "greeting")
    new = a.get("quickstart").version
    assert b.get("quickstart", new).version == new
