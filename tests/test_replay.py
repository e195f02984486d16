"""The impact preview: stored calls replayed through the published version and a draft."""

from __future__ import annotations

import shutil
from collections import Counter

from conftest import FLOWS, OPEN, Phone

from ivr.engine import start, step
from ivr.flows.loader import load_flow_text
from ivr.replay import impact, outcome_of, stored_calls

# Speech, keys and silence: sales, support, no-match then keys, silence thrice (no input).
SCRIPTS = [["1"], ["2"], ["I want to buy a new plan"], ["it's broken"],
           ["mumble mumble", "1"], [None, None, None], ["upgrade my plan"], ["0"]]


def _stored(tmp_path):
    shutil.copytree(FLOWS, tmp_path / "flows")
    phone = Phone(flows_dir=tmp_path / "flows", default_flow="quickstart")
    for script in SCRIPTS:
        phone.call(script, called="+19995550000")
    return phone, stored_calls(phone.store, "quickstart", since=0.0)


def test_replaying_the_published_version_gives_each_calls_real_outcome(tmp_path):
    phone, calls = _stored(tmp_path)
    assert len(calls) == len(SCRIPTS)
    published = phone.app.extensions["ivr.flows"].get("quickstart")
    report = impact(published, published, calls)
    real = Counter(outcome_of(phone.store.get_session(c.call_id)) for c in calls)
    assert report["published"] == report["draft"] == dict(real)
    assert report["changed"] == [] and report["calls"] == len(SCRIPTS)
    assert real["route:sales"] == 4 and real["no-match"] == 1  # the silent caller gave up


def test_a_draft_change_moves_exactly_the_calls_it_should(tmp_path):
    phone, calls = _stored(tmp_path)
    published = phone.app.extensions["ivr.flows"].get("quickstart")
    text = (tmp_path / "flows" / "quickstart.yaml").read_text()
    draft_text = text.replace("next: to_sales", "next: ask_budget").replace(
        "  to_sales:\n", "  ask_budget:\n    type: ask\n    prompt: Budget over 1000? Press 1.\n"
        "    intents:\n      big: {keys: ['1'], next: to_support_vip}\n    no_match: to_sales\n"
        "  to_support_vip:\n    type: route\n    queue: support\n"
        "  to_sales:\n")
    draft = load_flow_text(draft_text, tmp_path / "flows" / "quickstart.yaml")
    report = impact(published, draft, calls)
    # Direct replay, by hand, through the engine: the counts must agree.
    direct: Counter[str] = Counter()
    for call in calls:
        _, s = start(draft, call.call_id, call.caller, call.called, call.started_at)
        for at, event in call.inputs:
            if s.status != "active":
                break
            _, s = step(draft, s, event, at)
        direct[outcome_of(s)] += 1
    assert report["draft"] == dict(direct)
    # Sales callers now meet a new question their stored answers never got to.
    assert {c["before"] for c in report["changed"]} == {"route:sales"}
    assert {c["after"] for c in report["changed"]} == {"in IVR"}
    assert report["changed_count"] == 4
    assert report["new_unreached"] == ["to_support_vip"]
    assert all(c["caller"].endswith("06") and "*" in c["caller"] for c in report["changed"])
    assert OPEN.tzinfo is not None
