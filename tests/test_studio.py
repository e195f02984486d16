"""The flow studio's pages and endpoints: roles, CSRF, inline problems, try, publish,
roll back, compare and the impact preview (the browser test drives the same pages)."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import FLOWS, OPEN

from ivr.web import create_app
from ivr.web.settings import Settings

PASSWORD = "correct horse battery"


@pytest.fixture
def studio(tmp_path):
    shutil.copytree(FLOWS, tmp_path / "flows")
    app = create_app(Settings(flows_dir=tmp_path / "flows", store="memory", auth_token="t",
                              reload_interval_s=0, routing_tick_s=0), clock=lambda: OPEN)
    app.extensions["ivr.users"].add("ada", "admin", PASSWORD)
    app.extensions["ivr.users"].add("sam", "supervisor", PASSWORD)
    return app


def sign_in(client, name):
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"username": name, "password": PASSWORD, "csrf_token": token})
    page = client.get("/admin/flows/bank", headers={"Accept": "text/html"})
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True))
    return found.group(1) if found else ""


def post(client, path, token, **body):
    return client.post(path, json=body, headers={"X-CSRF-Token": token,
                                                 "Accept": "application/json"})


def test_only_admins_see_the_studio(studio):
    client = studio.test_client()
    html = {"Accept": "text/html"}
    assert client.get("/admin/flows", headers=html).status_code == 302  # to /login
    assert client.get("/admin/flows").status_code in (401, 503)  # the bearer-token API stays
    sign_in(client, "sam")
    assert client.get("/admin/flows", headers=html).status_code == 403
    assert client.get("/admin/flows/bank", headers=html).status_code == 403
    admin = studio.test_client()
    sign_in(admin, "ada")
    listing = admin.get("/admin/flows", headers=html).get_data(as_text=True)
    assert 'href="/admin/flows/bank"' in listing and "quickstart" in listing
    assert admin.get("/admin/flows/nosuch", headers=html).status_code == 404


def test_every_change_needs_the_csrf_token(studio):
    client = studio.test_client()
    token = sign_in(client, "ada")
    text = (FLOWS / "quickstart.yaml").read_text()
    for path in ("/admin/flows/quickstart/validate", "/admin/flows/quickstart/publish",
                 "/admin/flows/quickstart/rollback/1", "/admin/flows/quickstart/try"):
        r = client.post(path, json={"text": text, "message": "m"},
                        headers={"Accept": "application/json"})
        assert r.status_code in (400, 403), path
    assert post(client, "/admin/flows/quickstart/validate", token, text=text).status_code == 200


def test_problems_come_back_at_their_line_with_a_suggestion(studio):
    client = studio.test_client()
    token = sign_in(client, "ada")
    text = (FLOWS / "bank.yaml").read_text()
    lines = text.splitlines()
    target = next(k for k, line in enumerate(lines) if line.strip() == "next: check_hours")
    lines[target] = lines[target].replace("check_hours", "check_hourz")
    r = post(client, "/admin/flows/bank/validate", token, text="\n".join(lines) + "\n").json
    assert r["ok"] is False
    problem = r["problems"][0]
    assert problem["line"] == target + 1
    assert "unknown node 'check_hourz' (did you mean 'check_hours'?)" in problem["message"]
    assert r["svg"].startswith("<svg") and r["nodes"]["check_hours"] > 0
    bad_yaml = post(client, "/admin/flows/bank/validate", token, text="start: [\n").json
    assert bad_yaml["problems"][0]["message"].startswith("YAML syntax error")
    listing = client.get("/admin/flows", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert listing.count("unpublished changes") == 1  # the draft is kept...
    post(client, "/admin/flows/bank/validate", token, text=text)
    listing = client.get("/admin/flows", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "unpublished changes" not in listing  # ...until it is the live text again


def test_publish_refuses_problems_then_publishes_and_rolls_back(studio):
    client = studio.test_client()
    token = sign_in(client, "ada")
    registry = studio.extensions["ivr.flows"]
    v1 = registry.get("quickstart").version
    text = (FLOWS / "quickstart.yaml").read_text()
    r = post(client, "/admin/flows/quickstart/publish", token, message="typo",
             text=text.replace("next: to_sales", "next: to_salez"))
    assert r.status_code == 422 and registry.get("quickstart").version == v1
    assert post(client, "/admin/flows/quickstart/publish", token, text=text,
                message="").status_code == 400
    r = post(client, "/admin/flows/quickstart/publish", token, message="warmer greeting",
             text=text.replace("Thanks for calling.", "Hello!"))
    assert r.status_code == 200 and r.json["published"] == 2
    assert registry.get("quickstart").version != v1
    r = post(client, "/admin/flows/quickstart/rollback/1", token)
    assert r.status_code == 200 and registry.get("quickstart").version == v1
    audit = [(a["action"], a["actor"], a["version"]) for a in r.json["audit"]]
    assert audit[:3] == [("rollback", "ada", 1), ("publish", "ada", 2), ("save", "ada", 2)]
    assert ("refused", "ada", None) in audit
    diff = client.get("/admin/flows/quickstart/diff?a=1&b=2",
                      headers={"Accept": "application/json"}).json
    assert diff["changed"] == ["greet"] and diff["added"] == diff["removed"] == []
    assert "-    text: Thanks for calling." in diff["diff"]


def test_try_a_call_against_the_draft_touches_no_live_state(studio):
    client = studio.test_client()
    token = sign_in(client, "ada")
    store = studio.extensions["ivr.store"]
    text = (FLOWS / "quickstart.yaml").read_text().replace("Thanks for calling.", "Draft hello.")
    r = post(client, "/admin/flows/quickstart/try", token, text=text).json
    assert r["said"][0].startswith("Draft hello.") and r["status"] == "active" and r["node"] == "menu"
    r = post(client, "/admin/flows/quickstart/try", token, text=text, state=r["state"],
             speech="my internet is not working").json
    assert r["nlu"]["ranked"][0]["intent"] == "support"
    assert r["route"]["queue"] == "support" and r["status"] == "queued"
    assert store.sessions_since(0.0) == []  # nothing stored, nothing routed
    forged = post(client, "/admin/flows/quickstart/try", token, text=text,
                  state=r["state"][:-3] + "abc", digits="1")
    assert forged.status_code == 400


def test_impact_preview_counts_stored_calls(studio):
    from ivr.console import FlaskTransport, TwimlCaller

    client = studio.test_client()
    token = sign_in(client, "ada")
    studio.extensions["ivr.flows"]._default_name = "quickstart"
    transport = FlaskTransport(studio, "t")
    for k, answer in enumerate(["1", "2", "I want to buy"]):
        TwimlCaller(transport, lambda prompts, a=answer: a if prompts else None).call(
            "CA" + f"{k:032x}", "+15005550006", "+19995550000")
    text = (FLOWS / "quickstart.yaml").read_text()
    same = post(client, "/admin/flows/quickstart/impact", token, text=text, days=7).json
    assert same["calls"] == 3 and same["changed"] == []
    assert same["published"] == same["draft"] == {"route:sales": 2, "route:support": 1}
    draft = text.replace('keys: ["1"]', 'keys: ["3"]')
    moved = post(client, "/admin/flows/quickstart/impact", token, text=draft, days=7).json
    assert moved["changed_count"] == 1 and moved["changed"][0]["inputs"][0] == "1"
    assert moved["changed"][0]["before"] == "route:sales"
    assert post(client, "/admin/flows/quickstart/impact", token, text=text,
                days=400).status_code == 400
