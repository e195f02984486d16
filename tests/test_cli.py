"""The `ivr` command as an admin uses it: check, draw, schema, and a call from a terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

from conftest import FLOWS, ROOT

from ivr.cli import main


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr.cli", *args], input=stdin, text=True,
                          capture_output=True, cwd=ROOT, timeout=120)


def test_flows_check_ok_and_broken(tmp_path, capsys):
    assert main(["flows", "check", str(FLOWS)]) == 0
    assert capsys.readouterr().out == (
        f"ok: 3 flow(s) (bank, quickstart, verify_account), routing policy "
        f"{FLOWS / 'routing.yaml'} (9 queues), roster {FLOWS / 'agents.yaml'} (6 agents)\n")
    shutil.copy(FLOWS / "quickstart.yaml", tmp_path / "support.yaml")
    text = (tmp_path / "support.yaml").read_text()
    (tmp_path / "support.yaml").write_text(text.replace("next: to_sales", "next: to_saless"))
    assert main(["flows", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{tmp_path / 'support.yaml'}: node 'menu': intents.sales.next: unknown node "
                   "'to_saless' (did you mean 'to_sales'?)"]


def test_flows_graph_formats(tmp_path, capsys):
    for suffix in ("svg", "dot", "mmd"):
        out = tmp_path / f"bank.{suffix}"
        assert main(["flows", "graph", str(FLOWS / "bank.yaml"), "-o", str(out)]) == 0
        text = out.read_text()
        assert "route_billing" in text
    svg = ET.parse(tmp_path / "bank.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    labels = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
    assert {"main_menu", "verify/ask_account", "goodbye"} <= labels
    assert (tmp_path / "bank.dot").read_text().startswith('digraph "bank" {')
    assert (tmp_path / "bank.mmd").read_text().startswith("flowchart TD")
    assert main(["flows", "graph", str(FLOWS / "bank.yaml"), "-o", str(tmp_path / "x.png")]) == 2


def test_flows_schema_is_json_schema(capsys):
    assert main(["flows", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "IVR flow" and "nodes" in schema["properties"]


def test_ivr_call_piped_speech_prints_the_route_and_context():
    r = run_cli("call", "flows/bank.yaml", "--from", "+14155550102", "--at",
                "2026-11-23T10:00:00-05:00", stdin="my card was declined at the store\n")
    assert r.returncode == 0, r.stderr
    assert "IVR: Welcome back, James." in r.stdout
    assert "you> my card was declined at the store" in r.stdout
    assert "Routed to queue 'cards': skills cards>=2; language en; priority 1." in r.stdout
    start = r.stdout.index("Context handed to the agent:") + 29
    context = json.loads(r.stdout[start:r.stdout.index("\nRouting decisions:")])
    assert context["intent"] == "cards" and context["customer"]["first_name"] == "James"
    assert "[ringing agent ben (client:ben)]" in r.stdout  # the roster's best cards agent is reserved
    assert "[agent hears] cards call. James Carter, standard customer." in r.stdout
    assert "offered to agent ben (enqueue)" in r.stdout and "runner-up chloe" in r.stdout
    assert r.stderr == ""


def test_ivr_call_with_agents_offline_waits_in_queue():
    r = run_cli("call", "flows/quickstart.yaml", "--agents-offline", stdin="2\n")
    assert r.returncode == 0, r.stderr
    assert "[queued in 'support']" in r.stdout and "[ringing agent" not in r.stdout
    assert "queued (enqueue)" in r.stdout


def test_ivr_call_with_closed_hours_and_digits():
    r = run_cli("call", "flows/bank.yaml", "--at", "2026-11-22T10:00:00-05:00",
                stdin="1\n1\n")
    assert r.returncode == 0, r.stderr
    assert "[transferred to +18005550199]" in r.stdout
    assert "The call was transferred out." in r.stdout


def test_ivr_call_on_an_invalid_flow_exits_1(tmp_path):
    (tmp_path / "bad.yaml").write_text("start: x\nnodes:\n  x: {type: hangup, next: y}\n")
    r = run_cli("call", str(tmp_path / "bad.yaml"))
    assert r.returncode == 1
    assert r.stderr.strip() == f"{tmp_path / 'bad.yaml'}: node 'x': next: unknown field"


def test_flows_check_also_checks_routes_against_the_routing_policy(tmp_path, capsys):
    for name in ("quickstart.yaml", "routing.yaml"):
        shutil.copy(FLOWS / name, tmp_path / name)
    path = tmp_path / "quickstart.yaml"
    path.write_text(path.read_text().replace("queue: sales", "queue: presales"))
    assert main(["flows", "check", str(tmp_path)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith(f"{path}: node 'to_sales': queue: 'presales' is not a queue of ")
