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


def always_open_flows(folder: Path) -> Path:
    """A copy of the example flows whose bank is open around the clock (for tests that
    run on the real clock, such as those through a real server)."""
    import re
    import shutil

    shutil.copytree(FLOWS, folder, dirs_exist_ok=True)
    bank = folder / "bank.yaml"
    text = re.sub(r'\["\d\d:\d\d-\d\d:\d\d"\]', '["00:00-24:00"]', bank.read_text())
    text = re.sub(r"    holidays: \[.*\]\n", "", text)
    bank.write_text(text.replace('      sat: ["00:00-24:00"]',
                                 '      sat: ["00:00-24:00"]\n      sun: ["00:00-24:00"]'))
    return folder


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
