"""Live KPIs: pure definitions over call facts, and the whole path from stored calls to
``ivr report`` and ``/reports``."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.cli import main
from ivr.report import KEYS, CallFact, Windows, kpis, report
from routing import RoutingPolicy
from tests.test_auth import PASSWORD, make_app
from tests.test_desktop import Desk, ring

DAY = 86400.0
POLICY = RoutingPolicy.default()


def fact(i, **kw):
    base = dict(call_id=f"c{i}", flow_id="bank", started_at=1000.0 + i, customer=f"caller:{i}",
                intent="billing")
    return CallFact(**{**base, **kw})


def test_service_level_keeps_abandons_in_the_denominator_and_asa_is_over_answered():
    facts = [fact(1, offered=True, answered=True, within_sl=True, wait_seconds=5.0),
             fact(2, offered=True, answered=True, wait_seconds=40.0),
             fact(3, offered=True, abandoned=True),
             fact(4, outcome="completed_in_ivr")]
    k = kpis(facts, Windows.of(POLICY, facts))
    assert (k["calls"], k["offered"], k["answered"], k["abandoned"]) == (4, 3, 2, 1)
    assert k["service_level"] == pytest.approx(1 / 3, abs=1e-4)
    assert k["abandon_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert k["asa_seconds"] == 22.5
    assert k["containment"] == 0.25
    assert k["csat"] is None and k["ces"] is None and k["fcr"] == 0.0


def test_fcr_needs_resolved_no_transfer_and_no_repeat_about_the_same_intent():
    resolved = dict(offered=True, answered=True, disposition="resolved")
    facts = [fact(1, customer="caller:a", **resolved),
             fact(2, customer="caller:a", started_at=1000 + 3 * DAY, **resolved),  # repeat of 1
             fact(3, customer="caller:b", **resolved, transfers=("misrouted",)),
             fact(4, customer="caller:c", **resolved),
             fact(5, customer="caller:c", started_at=1000 + 2 * DAY, intent="loans", **resolved),
             fact(6, customer="caller:d", **resolved),
             fact(7, customer="caller:d", started_at=1000 + 8 * DAY, **resolved)]  # too late
    k = kpis(facts, Windows.of(POLICY, facts))
    # 1 repeats; 3 was transferred; 4 (other intent next), 2, 5, 6, 7 count.
    assert k["fcr"] == pytest.approx(5 / 7, abs=1e-4)
    assert k["transfer_rate"] == pytest.approx(1 / 7, abs=1e-4)
    assert k["misroute_rate"] == pytest.approx(1 / 7, abs=1e-4)


def test_containment_excludes_a_repeat_call_within_a_day():
    facts = [fact(1, customer="caller:a", outcome="completed_in_ivr"),
             fact(2, customer="caller:a", started_at=1000 + 3600, offered=True),
             fact(3, customer="caller:b", outcome="completed_in_ivr")]
    assert kpis(facts, Windows.of(POLICY, facts))["containment"] == pytest.approx(1 / 3, abs=1e-4)


facts_strategy = st.lists(st.builds(
    lambda i, offered, answered, sl, transfers, disp, csat, ces: fact(
        i, offered=offered, answered=offered and answered,
        abandoned=offered and not answered, within_sl=offered and answered and sl,
        transfers=transfers if offered and answered else (), disposition=disp,
        csat=csat, ces=ces, wait_seconds=1.0 if offered and answered else None),
    st.integers(0, 10 ** 6), st.booleans(), st.booleans(), st.booleans(),
    st.sampled_from([(), ("misrouted",), ("escalation",)]),
    st.sampled_from([None, "resolved", "not_resolved"]),
    st.one_of(st.none(), st.integers(1, 5)), st.one_of(st.none(), st.integers(1, 7))),
    max_size=30, unique_by=lambda f: f.call_id)


@settings(max_examples=60, deadline=None)
@given(facts_strategy)
def test_kpis_are_consistent_for_any_calls(facts):
    result = report(facts, facts, POLICY, by="queue")
    assert set(KEYS) <= set(result) and "definitions" in result
    assert result["answered"] + result["abandoned"] == result["offered"] <= len(facts)
    for key in ("abandon_rate", "service_level", "transfer_rate", "misroute_rate", "fcr",
                "containment", "csat"):
        assert result[key] is None or 0 <= result[key] <= 1, key
    assert result["misroute_rate"] is None or result["misroute_rate"] <= result["transfer_rate"]
    assert result["fcr"] is None or result["fcr"] <= 1 - result["transfer_rate"] + 1e-9
    assert sum(row["offered"] for row in result["by"]) == result["offered"]


# ------------------------------------------------------------------ stored calls


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """A morning in miniature on the SQLite store: Ana takes a card call the IVR heard
    as billing, transfers it (misrouted) to Ben, who resolves it; the caller rates it."""
    tmp_path = tmp_path_factory.mktemp("day")
    app = make_app(tmp_path)
    users = app.extensions["ivr.users"]
    for name in ("ana", "ben"):
        users.add(name, "agent", PASSWORD)
    users.add("sam", "supervisor", PASSWORD)
    ana, ben = Desk(app, "ana"), Desk(app, "ben")
    ana.post("/agent/presence", {"state": "available"})
    sid = ring(app, "I was charged twice for the same coffee", after_queue="bridged",
               keys=["5", "2"])
    ben.post("/agent/presence", {"state": "available"})
    assert ana.post(f"/agent/calls/{sid}/accept").status_code == 200
    assert ana.post(f"/agent/calls/{sid}/transfer", {"agent": "ben", "reason": "misrouted",
                                                     "queue": "cards"}).status_code == 200
    assert ana.post(f"/agent/calls/{sid}/wrap-up", {"disposition": "not_resolved"}
                    ).status_code == 200
    assert ben.post(f"/agent/calls/{sid}/accept").status_code == 200
    assert ben.post(f"/agent/calls/{sid}/complete").status_code == 200
    assert ben.post(f"/agent/calls/{sid}/wrap-up", {
        "disposition": "resolved", "corrected_intent": "cards"}).status_code == 200
    return app, tmp_path, sid


def test_ivr_report_json_has_the_fixed_keys_and_counts_the_transfer(day, capsys):
    app, data_dir, sid = day
    code = main(["report", "--from", "2026-11-23", "--to", "2026-11-23", "--by", "intent",
                 "--json", "--data-dir", str(data_dir)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(KEYS) | {"definitions", "by"} <= set(result)
    assert (result["offered"], result["answered"], result["abandoned"]) == (1, 1, 0)
    assert result["transfer_rate"] == 1.0 and result["misroute_rate"] == 1.0
    assert result["fcr"] == 0.0  # resolved, but only after a transfer
    assert result["csat"] == 1.0 and result["ces"] == 2.0
    assert result["containment"] == 0.0 and result["service_level"] == 1.0
    assert [row["key"] for row in result["by"]] == ["cards"]  # the agent's correction
    (m,) = result["misroutes"]
    assert m["intent"] == "billing" and m["corrected_to"] == ["cards"]
    assert m["phrases"] == ["I was charged twice for the same coffee"]
    # the same figures on the page
    sam = app.test_client()
    from tests.test_auth import sign_in
    sign_in(sam, "sam")
    page = sam.get("/reports?from=2026-11-23&to=2026-11-23&by=intent",
                   headers={"Accept": "application/json"}).get_json()
    assert {k: page[k] for k in KEYS} == {k: result[k] for k in KEYS}
    html = sam.get("/reports?from=2026-11-23", headers={"Accept": "text/html"})
    assert html.status_code == 200 and "first contact" in html.get_data(as_text=True)
    bad = sam.get("/reports?from=2026-13-01", headers={"Accept": "application/json"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.get_json()["error"]


def test_nlu_corrections_export_labelled_csv(day, capsys):
    _, data_dir, _ = day
    assert main(["nlu", "corrections", "--from", "2026-11-23", "--data-dir",
                 str(data_dir)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["text", "category"], ["I was charged twice for the same coffee", "cards"]]


def test_report_csv_and_bad_dates(day, capsys):
    _, data_dir, _ = day
    assert main(["report", "--from", "2026-11-23", "--csv", "--data-dir", str(data_dir)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows[0]["key"] == "all" and rows[0]["transfer_rate"] == "1.0"
    assert main(["report", "--from", "2026-11-24", "--to", "2026-11-23",
                 "--data-dir", str(data_dir)]) == 2
    assert capsys.readouterr().err == "error: --to 2026-11-23 is before --from 2026-11-24\n"
    with pytest.raises(SystemExit) as exc:
        main(["report", "--from", "yesterday"])
    assert exc.value.code == 2
