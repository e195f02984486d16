"""A newcomer's first hour (issue 9): every command's help works, every bad flag or file
gets one clear line and exit 2 (1 for an invalid flow), and nothing ends in a traceback."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FLOWS, ROOT
from hypothesis import given
from hypothesis import strategies as st

from ivr.argtypes import int_at_least, probability
from ivr.cli import build_parser, main

LATIN1_PROMPT = "Gracias por llamar, ¿en qué podemos ayudarle?"


def run_cli(*args: str, stdin: str = "", cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ivr.cli", *args], input=stdin, text=True,
                          capture_output=True, cwd=cwd, timeout=120)


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Every command path of the parser tree, discovered from argparse itself."""
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


def test_help_works_on_ivr_and_every_subcommand(capsys):
    paths = list(command_paths(build_parser()))
    assert {("serve",), ("flows", "graph"), ("route", "explain"), ("staff",),
            ("nlu", "eval")} <= set(paths)
    for path in paths:
        for flag in ("--help", "-h"):
            with pytest.raises(SystemExit) as done:
                main([*path, flag])
            assert done.value.code == 0, path
            out = capsys.readouterr().out
            assert out.startswith(f"usage: {' '.join(('ivr', *path))}"), path


def test_bare_ivr_prints_help_and_version_is_the_package_version(capsys):
    from importlib.metadata import version

    assert main([]) == 2
    assert "commands:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"ivr {version('ivr-router')}"


@pytest.mark.parametrize("argv, flag", [
    (["simulate", "s.yaml", "--replications", "-3"], "--replications"),
    (["simulate", "s.yaml", "--replications", "0"], "--replications"),
    (["simulate", "s.yaml", "--workers", "0"], "--workers"),
    (["staff", "s.yaml", "--workers", "-1"], "--workers"),
    (["staff", "s.yaml", "--within", "-5"], "--within"),
    (["staff", "s.yaml", "--service-level", "1.5"], "--service-level"),
    (["staff", "s.yaml", "--max-iterations", "0"], "--max-iterations"),
    (["erlang", "100", "180", "--within", "-1"], "--within"),
    (["erlang", "100", "-180"], "aht"),
    (["erlang", "100", "180", "--agents", "0"], "--agents"),
    (["erlang", "nan", "180"], "calls_per_hour"),
    (["nlu", "try", "flows/bank.yaml", "hi", "--asr-confidence", "7"], "--asr-confidence"),
    (["nlu", "eval", "--train", "a", "--test", "b", "--threshold", "2"], "--threshold"),
    (["call", "flows/bank.yaml", "--after-agent", "explode"], "--after-agent"),
    (["call", "flows/bank.yaml", "--from", "not-a-number"], "--from"),
    (["call", "flows/bank.yaml", "--at", "tomorrow"], "--at"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--workers", "0"], "--workers"),
])
def test_out_of_range_flags_exit_2_with_one_line(argv, flag, capsys):
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"ivr {argv[0]}") and f"argument {flag}" in line


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_probability_accepts_exactly_the_unit_interval(x):
    try:
        assert probability(repr(x)) == x and 0 <= x <= 1
    except argparse.ArgumentTypeError:
        assert not 0 <= x <= 1


@given(st.integers(-10**6, 10**6), st.integers(-5, 5))
def test_int_at_least_accepts_exactly_its_range(n, low):
    try:
        assert int_at_least(low)(str(n)) == n >= low
    except argparse.ArgumentTypeError:
        assert n < low


# ------------------------------------------------------------------ files not in UTF-8


def _cp1252_flow(folder: Path) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "hola.yaml"
    path.write_bytes(("start: hi\nnodes:\n  hi: {type: hangup, say: '" + LATIN1_PROMPT
                      + "'}\n").encode("cp1252"))
    return path


def test_a_flow_not_in_utf8_is_named_with_its_byte_offset(tmp_path, capsys):
    path = _cp1252_flow(tmp_path / "flows")
    offset = path.read_bytes().index("¿".encode("cp1252"))
    expected = (f"{path}: not UTF-8 text (byte 0xbf at offset {offset}); UTF-8 is expected: "
                "save the file as UTF-8")
    assert main(["flows", "check", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [expected]
    assert main(["flows", "check", str(path.parent)]) == 1
    assert capsys.readouterr().out.splitlines() == [expected]
    r = run_cli("call", str(path))
    assert r.returncode == 1 and r.stderr.splitlines() == [expected]
    from ivr.errors import FlowError
    from ivr.flows.registry import FlowRegistry  # what `ivr serve` opens

    with pytest.raises(FlowError) as err:
        FlowRegistry.open(path.parent)
    assert err.value.problems == [expected]


def test_policy_scenario_and_csvs_not_in_utf8_name_the_file(tmp_path, capsys):
    policy = tmp_path / "routing.yaml"
    policy.write_bytes("queues:\n  cobros: {description: 'Facturación'}\n".encode("latin-1"))
    assert main(["route", "check-policy", str(policy)]) == 1
    assert f"{policy}: not UTF-8 text (byte 0xf3 at offset" in capsys.readouterr().out

    scenario = tmp_path / "día.yaml"
    scenario.write_bytes("# Día de campaña\narrivals: {rate_per_hour: 10}\n".encode("latin-1"))
    assert main(["simulate", str(scenario), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith(f"error: {scenario}: not UTF-8 text (byte 0xed")

    train = tmp_path / "train.csv"
    train.write_bytes("text,category\nmi tarjeta no funcionó,cards\n".encode("latin-1"))
    assert main(["nlu", "eval", "--train", str(train), "--test", str(train)]) == 2
    assert f"{train}: not UTF-8 text" in capsys.readouterr().err

    binary = tmp_path / "log.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    replay = tmp_path / "replay.yaml"
    replay.write_text(f"arrivals: {{replay: {binary.name}}}\nagents: [{{count: 2}}]\n"
                      "duration_hours: 1\n")
    assert main(["simulate", str(replay), "--quiet"]) == 2
    assert f"{binary}: not UTF-8 text (byte 0x89 at offset 0)" in capsys.readouterr().err

    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    customers = folder / "data" / "customers.csv"
    before = customers.read_bytes()
    extra = "+14155550177,99999999,José,Núñez,standard,01011980,1.00,es\n".encode("latin-1")
    customers.write_bytes(before + extra)
    assert main(["flows", "check", str(folder)]) == 1
    offset = len(before) + extra.index(b"\xe9")
    assert f"{customers}: not UTF-8 text (byte 0xe9 at offset {offset})" in \
        capsys.readouterr().out


# ------------------------------------------------------------------ output paths, pipes


def test_output_paths_are_checked_before_any_work(tmp_path, capsys):
    svg = tmp_path / "missing" / "deeper" / "quickstart.svg"
    assert main(["flows", "graph", str(FLOWS / "quickstart.yaml"), "-o", str(svg)]) == 0
    assert svg.read_text().lstrip().startswith(("<svg", "<?xml"))
    capsys.readouterr()
    existing = tmp_path / "summary.txt"
    existing.write_text("keep me")
    for command in ("simulate", "staff"):
        started = time.perf_counter()
        with pytest.raises(SystemExit) as done:
            main([command, str(ROOT / "scenarios" / "textbook.yaml"), "--out", str(existing)])
        assert done.value.code == 2 and time.perf_counter() - started < 2
        assert f"argument --out: {existing} exists and is not a folder" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    with pytest.raises(SystemExit):
        main(["flows", "graph", str(FLOWS / "quickstart.yaml"), "-o", str(tmp_path)])
    assert "is a folder, not a file" in capsys.readouterr().err


def test_piping_into_head_ends_quietly():
    with subprocess.Popen([sys.executable, "-m", "ivr.cli", "flows", "schema"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader (`head`) is gone before the first line is written
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 0
    assert err == ""


# ------------------------------------------------------------------ empty scenarios


@pytest.mark.parametrize("body, field, command", [
    ("arrivals: {rate_per_hour: 0}\nagents: [{count: 3}]\n", "arrivals", "simulate"),
    ("arrivals: {rates_per_hour: [0, 0]}\nagents: [{count: 3}]\n", "arrivals", "staff"),
    ("arrivals: {rate_per_hour: 100}\nagents: [{count: 0}]\n", "agents", "simulate"),
])
def test_an_empty_scenario_is_refused_with_a_clear_error(tmp_path, capsys, body, field,
                                                         command):
    path = tmp_path / "empty.yaml"
    path.write_text(body + "duration_hours: 1\nhandle_time: {distribution: exponential, "
                    "mean_seconds: 180}\n")
    assert main([command, str(path), "--quiet"]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: {path}: {field}: no ")


def test_progress_bars_only_on_a_terminal():
    from simulation.cli import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    log, tty = io.StringIO(), Terminal()
    for stream in (log, tty):
        bar = _Progress("simulating", stream=stream)
        bar(1, 2)
        bar(2, 2)
    assert log.getvalue() == ""
    assert tty.getvalue().startswith("\rsimulating [") and tty.getvalue().endswith("2/2\n")


def test_erlang_says_overloaded_instead_of_infinite_waits(capsys):
    assert main(["erlang", "600", "360", "--agents", "50", "60", "70"]) == 0
    out = capsys.readouterr().out
    assert "inf" not in out
    assert "    50   overloaded (load 60.00 >= 50 agents)" in out
    assert "    60   overloaded (load 60.00 >= 60 agents)" in out
    assert "    70 " in out and "    70   overloaded" not in out


# ------------------------------------------------------------------ check, call, explain


def test_flows_check_and_serve_agree_on_an_empty_folder(tmp_path, capsys):
    from ivr.errors import FlowError
    from ivr.flows.registry import FlowRegistry

    assert main(["flows", "check", str(tmp_path)]) == 1
    assert capsys.readouterr().out == f"{tmp_path}: no flow files (*.yaml) found\n"
    with pytest.raises(FlowError) as err:
        FlowRegistry.open(tmp_path)
    assert err.value.problems == [f"{tmp_path}: no flow files (*.yaml) found"]


def test_call_and_check_of_one_file_load_the_same_set(tmp_path, capsys):
    for name in ("quickstart.yaml", "routing.yaml", "agents.yaml"):
        shutil.copy(FLOWS / name, tmp_path / name)
    (tmp_path / "broken.yaml").write_text("start: x\nnodes:\n  x: {type: hangup, next: y}\n")
    quickstart = tmp_path / "quickstart.yaml"
    assert main(["flows", "check", str(quickstart)]) == 0
    assert capsys.readouterr().out.startswith("ok: 1 flow(s) (quickstart), routing policy ")
    r = run_cli("call", str(quickstart), stdin="1\n")
    assert r.returncode == 0, r.stderr
    assert "[ringing agent farid (+*********88)]" in r.stdout  # id and masked number
    assert "+14155550188" not in r.stdout
    # a route to a queue the policy lacks: both refuse the file, with the same line
    quickstart.write_text(quickstart.read_text().replace("queue: sales", "queue: presales"))
    assert main(["flows", "check", str(quickstart)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    r = run_cli("call", str(quickstart), stdin="1\n")
    assert r.returncode == 1 and r.stderr.splitlines() == [line]


def test_a_call_recorded_with_data_dir_is_explained_by_route_explain(tmp_path, capsys):
    data = tmp_path / "var"
    r = run_cli("call", "flows/quickstart.yaml", "--data-dir", str(data), stdin="1\n")
    assert r.returncode == 0, r.stderr
    hint = r.stdout.splitlines()[-1]
    assert hint.startswith(f"Recorded in {data}: ivr route explain CA")
    call_id = hint.split()[-3]
    assert main(["route", "explain", call_id, "--data-dir", str(data)]) == 0
    out = capsys.readouterr().out
    assert f"call {call_id} [sales] offered to agent farid (enqueue)" in out


def test_the_agent_hears_the_callers_purpose_never_a_language_choice():
    r = run_cli("call", "flows/bank.yaml", "--at", "2026-11-23T10:00:00-05:00",
                stdin="1\nagent\n")  # an unknown caller picks English, then asks for a person
    assert r.returncode == 0, r.stderr
    assert "Reason: asked for an agent." in r.stdout
    assert "Reason: english" not in r.stdout and '"intent"' not in r.stdout


def test_the_bank_speaks_each_language_segment_with_its_own_voice(tmp_path, capsys):
    """Rendered by the twilio library through the real app: one <Say> per language."""
    import xml.etree.ElementTree as ET

    from ivr.console import FlaskTransport  # signs requests like Twilio
    from ivr.flows.registry import FlowRegistry
    from ivr.live.calls_store import MemoryStore
    from ivr.web import create_app
    from ivr.web.settings import Settings

    at = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.timezone.utc)
    app = create_app(Settings(flows_dir=FLOWS, store="memory", auth_token="t" * 32,
                              public_url="http://localhost", reload_interval_s=0,
                              routing_tick_s=0),
                     store=MemoryStore(), registry=FlowRegistry.open(FLOWS), clock=lambda: at)
    status, body = FlaskTransport(app, "t" * 32).post("/voice/incoming", {
        "CallSid": "CA" + "1" * 32, "AccountSid": "AC" + "0" * 32, "From": "+15005550006",
        "To": "+14155550100", "Direction": "inbound", "CallStatus": "in-progress"})
    assert status == 200
    says = [(s.get("language"), s.get("voice"), s.text) for s in ET.fromstring(body).iter("Say")]
    assert says == [
        ("en-US", "Polly.Joanna",
         "Thank you for calling Acme Bank. Gracias por llamar a Acme Bank."),
        ("en-US", "Polly.Joanna", "For English, press 1 or say English."),
        ("es-US", "Polly.Lupe", "Para español, oprima 2 o diga español."),
    ]
    bad = tmp_path / "bad.yaml"
    bad.write_text("languages: {en: {voice: Polly.Joanna, locale: en-US}}\nstart: hi\nnodes:\n"
                   "  hi: {type: hangup, text: [{en: Hello}, {fr: Bonjour}]}\n")
    assert main(["flows", "check", str(bad)]) == 1
    assert capsys.readouterr().out == (f"{bad}: node 'hi': text: segment 1 is not one declared "
                                       "language and its text (e.g. {en: Hello}; declared: en)\n")


def test_commands_that_read_the_store_start_in_a_fresh_interpreter(tmp_path):
    """`ivr report`, `ivr route explain` and `ivr flows history` import the store layer
    first (no web app loaded before them, as in a shell): no import cycle, one line
    naming the missing store, and a report once a store exists."""
    empty = tmp_path / "empty"
    for args in (["report", "--json"], ["route", "explain", "CA" + "0" * 32],
                 ["flows", "history", "bank"]):
        done = run_cli(*args, "--data-dir", str(empty))
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"error: no store at {empty / 'ivr.sqlite3'} (start the server once, give "
            "--data-dir or IVR_DATA_DIR, or IVR_DATABASE_URL)"]
    from ivr.live.calls_store import SQLiteStore

    SQLiteStore(tmp_path / "var" / "ivr.sqlite3")
    done = run_cli("report", "--json", "--data-dir", str(tmp_path / "var"))
    assert done.returncode == 0, done.stderr
    assert '"offered": 0' in done.stdout
