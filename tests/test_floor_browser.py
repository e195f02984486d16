"""A whole day in miniature, in a real browser (Debian's Chromium driven by Playwright)
against the real server (gunicorn on loopback): two agents sign in and go available;
signed webhooks bring a call in; the offer pops with its context; the first agent
accepts and transfers it to the second's skill; the second completes it with a
disposition; the wallboard and the report show it. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

import pytest
from conftest import KNOWN_CALLER, ROOT, always_open_flows, call_sid

from ivr.console import HttpTransport, TwimlCaller
from ivr.live.calls_store import SQLiteStore
from ivr.loopback import LoopbackServer
from ivr.users import SqlUserTable, Users

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = secrets.token_urlsafe(12)


def _browser_or_skip():
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "playwright is not installed (pip install -e '.[test]')"
    if why is None and not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing (apt-get install chromium)"
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests must run in CI: {why}")
        pytest.skip(why)
    return sync_playwright


@pytest.fixture(scope="module")
def browser():
    sync_playwright = _browser_or_skip()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


def sign_in(browser, base, name):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15000)
    page.goto(base + "/login")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    return page


def test_a_whole_day_in_miniature(tmp_path, browser):
    token = secrets.token_hex(16)
    flows = always_open_flows(tmp_path / "flows")
    data = tmp_path / "data"
    users = Users(SqlUserTable(SQLiteStore(data / "ivr.sqlite3").connection))
    for name, role in (("ana", "agent"), ("ben", "agent"), ("sam", "supervisor")):
        users.add(name, role, PASSWORD)
    SHOTS.mkdir(parents=True, exist_ok=True)
    with LoopbackServer(data, token, flows_dir=flows, workers=2, threads=16) as srv:
        ana, ben = sign_in(browser, srv.url, "ana"), sign_in(browser, srv.url, "ben")
        for page in (ana, ben):
            page.wait_for_url("**/agent")
            page.get_by_role("button", name="Available").click()
            page.get_by_text("available", exact=True).wait_for()
        sam = sign_in(browser, srv.url, "sam")
        sam.wait_for_url("**/wallboard")

        # A caller the IVR hears as billing: Ana (billing 4) is the best fit.
        keys = ["I was charged twice for the same coffee", "5", "2"]
        caller = TwimlCaller(HttpTransport(srv.url, token),
                             lambda prompts: keys.pop(0) if keys else None,
                             after_queue="bridged")
        sid = call_sid()
        caller.call(sid, KNOWN_CALLER, "+14155550100")

        offer = ana.get_by_role("region", name=f"Offer {sid}")
        offer.wait_for()
        assert "“I was charged twice for the same coffee”" in offer.inner_text()
        assert "James Carter" in offer.inner_text() and "billing" in offer.inner_text()
        assert re.search(r"\+\*+02", offer.inner_text())  # the caller ID, masked
        ana.screenshot(path=str(SHOTS / "agent-desktop.png"), full_page=True)
        offer.get_by_role("button", name="Accept").click()

        call = ana.get_by_role("region", name=f"Call {sid}")
        call.get_by_role("button", name="Hold").click()
        call.get_by_role("button", name="Resume").click()
        call = ana.get_by_role("region", name=f"Call {sid}")
        call.get_by_label("Transfer to queue").select_option("cards")
        call.get_by_label("Transfer to agent").select_option("ben")
        call.get_by_label("Transfer reason").select_option("misrouted")
        call.get_by_role("button", name="Transfer").click()

        handed = ben.get_by_role("region", name=f"Offer {sid}")
        handed.wait_for()
        assert "misrouted" in handed.inner_text() and "James Carter" in handed.inner_text()
        handed.get_by_role("button", name="Accept").click()
        ben.get_by_role("region", name=f"Call {sid}").get_by_role(
            "button", name="End call").click()
        wrap = ben.get_by_role("region", name=f"Wrap-up {sid}")
        wrap.get_by_label("Disposition").select_option("resolved")
        wrap.get_by_label("Corrected intent").select_option("cards")
        wrap.get_by_label("Notes").fill("card fee refunded")
        wrap.get_by_role("button", name="Complete").click()
        wrap.wait_for(state="detached")
        ana_wrap = ana.get_by_role("region", name=f"Wrap-up {sid}")
        ana_wrap.get_by_label("Disposition").select_option("not_resolved")
        ana_wrap.get_by_role("button", name="Complete").click()
        ana_wrap.wait_for(state="detached")

        # The wallboard follows live: both agents available again, the queues counted.
        agents = sam.locator("#agents")
        agents.locator("tr[data-agent=ben]").get_by_text("available").wait_for()
        agents.locator("tr[data-agent=ana]").get_by_text("available").wait_for()
        for queue in ("billing", "cards"):  # offered 1, answered 1 in each (the transfer)
            row = sam.locator(f"#queues tr[data-queue={queue}] td")
            assert [row.nth(4).inner_text(), row.nth(5).inner_text()] == ["1", "1"], queue
        sam.screenshot(path=str(SHOTS / "wallboard.png"), full_page=True)

        sam.get_by_role("link", name="Reports").click()
        sam.get_by_label("Group by").select_option("intent")
        sam.get_by_role("button", name="Show").click()
        kpis = sam.locator("#kpis")
        assert kpis.locator("tr[data-kpi=transfers] td").first.inner_text() == "1"
        assert kpis.locator("tr[data-kpi=transfer_rate] td").first.inner_text() == "100.0%"
        assert kpis.locator("tr[data-kpi=fcr] td").first.inner_text() == "0.0%"
        assert kpis.locator("tr[data-kpi=csat] td").first.inner_text() == "100.0%"
        assert kpis.locator("tr[data-kpi=ces] td").first.inner_text() == "2.0"
        misrouted = sam.get_by_role("region", name="Most misrouted intents").inner_text()
        assert "I was charged twice" in misrouted and "cards" in misrouted
        assert sam.get_by_role("region", name="By intent").get_by_role(
            "rowheader", name="cards").count() == 1  # the agent's correction counts
        sam.screenshot(path=str(SHOTS / "reports.png"), full_page=True)

        # Pages keep agents to their own, and supervisors off the flows.
        assert ana.goto(srv.url + "/wallboard").status == 403
        assert ana.get_by_role("link", name="Wallboard").count() == 0
        assert sam.get_by_role("link", name="Flows").count() == 0
        sam.get_by_role("button", name="Sign out").click()
        sam.wait_for_url("**/login")
        assert sam.goto(srv.url + "/wallboard").url.endswith("/login?next=/wallboard")


def requests_of(api, count: int, limit_s: float = 15.0) -> list[tuple[str, str, dict]]:
    """The first ``count`` REST requests the server's background sender made."""
    deadline = time.monotonic() + limit_s
    while len(api.requests) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(api.requests) >= count, [r.path for r in api.requests]
    keep = ("Hold", "EndConferenceOnExit", "To", "Label", "Url")
    return [(r.method, r.path.split("/Accounts/")[1].split("/", 1)[1],
             {k: v for k, v in r.form.items() if k in keep}) for r in api.requests[:count]]


def test_hold_and_a_warm_transfer_move_the_callers_leg_in_the_room(tmp_path, browser):
    """IVR_AGENT_BRIDGE=conference on the real server: Hold, Resume, a warm transfer the
    target accepts, clicked in the browser, reach the stand-in for Twilio's REST API as
    changes of the call's room, in order, from the server's background sender."""
    from fake_twilio import FakeTwilioAPI

    from ivr.live.conference import agent_label, room_name

    token = secrets.token_hex(16)
    data = tmp_path / "data"
    users = Users(SqlUserTable(SQLiteStore(data / "ivr.sqlite3").connection))
    for name in ("ana", "ben"):
        users.add(name, "agent", PASSWORD)
    conf = "CF" + "c" * 32
    with FakeTwilioAPI() as api:
        srv = LoopbackServer(data, token, flows_dir=always_open_flows(tmp_path / "flows"),
                             workers=1, threads=16)
        srv.extra_env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "IVR_TWILIO_API_URL": api.url,
                         "IVR_PUBLIC_URL": srv.url, "IVR_AGENT_BRIDGE": "conference"}
        with srv:
            twilio = HttpTransport(srv.url, token)
            ana, ben = sign_in(browser, srv.url, "ana"), sign_in(browser, srv.url, "ben")
            for page in (ana, ben):
                page.wait_for_url("**/agent")
                page.get_by_role("button", name="Available").click()
                page.get_by_text("available", exact=True).wait_for()
            keys = ["I was charged twice for the same coffee"]
            sid = call_sid()
            TwimlCaller(twilio, lambda prompts: keys.pop(0) if keys else None).call(
                sid, KNOWN_CALLER, "+14155550100")
            # Twilio's side: the caller into the room, Ana's leg answered, the callbacks.
            (_, redirect, _), (_, dial, leg) = requests_of(api, 2)
            assert redirect == f"Calls/{sid}.json" and dial == "Calls.json"
            assert leg["To"] == "client:ana" and "/voice/agent-join?" in leg["Url"]
            query = f"call={sid}&agent=ana"
            status, body = twilio.post(f"/voice/connect?{query}", {"CallSid": sid})
            assert status == 200 and room_name(sid) in body
            status, body = twilio.post(f"/voice/agent-join?{query}", {"CallSid": "CA" + "a" * 32})
            assert status == 200 and agent_label("ana") in body
            for n, (event, who, label) in enumerate([
                    ("conference-start", "", ""), ("participant-join", sid, "caller"),
                    ("participant-join", "CA" + "a" * 32, agent_label("ana"))]):
                form = {"ConferenceSid": conf, "StatusCallbackEvent": event,
                        "SequenceNumber": str(n + 1), "CallSid": who, "ParticipantLabel": label}
                assert twilio.post(f"/voice/conference?call={sid}",
                                   {k: v for k, v in form.items() if v})[0] == 204

            call = ana.get_by_role("region", name=f"Call {sid}")
            call.get_by_role("button", name="Hold").click()
            call.get_by_role("heading", name=re.compile("on hold")).wait_for()
            call.get_by_role("button", name="Resume").click()
            caller = f"Conferences/{conf}/Participants/{sid}.json"
            assert requests_of(api, 4)[2:] == [("POST", caller, {"Hold": "true"}),
                                                ("POST", caller, {"Hold": "false"})]

            call = ana.get_by_role("region", name=f"Call {sid}")
            call.get_by_label("Warm transfer (named agent accepts first)").check()
            call.get_by_label("Transfer to agent").select_option("ben")
            call.get_by_label("Transfer reason").select_option("needs_other_skill")
            call.get_by_role("button", name="Transfer").click()
            ana.get_by_text("the caller hears hold music while ben's phone joins you").wait_for()
            assert requests_of(api, 6)[4:] == [
                ("POST", caller, {"Hold": "true"}),
                ("POST", f"Conferences/{room_name(sid)}/Participants.json",
                 {"To": "client:ben", "Label": agent_label("ben"),
                  "EndConferenceOnExit": "false"})]

            consult = ben.get_by_role("region", name=f"Consult {sid}")
            consult.get_by_text("Your phone rings to talk with ana").wait_for()
            consult.get_by_role("button", name="Accept transfer").click()
            ben.get_by_role("region", name=f"Call {sid}").wait_for()
            ana.get_by_role("region", name=f"Wrap-up {sid}").wait_for()
            participants = f"Conferences/{conf}/Participants"
            assert requests_of(api, 10)[6:] == [
                ("POST", f"{participants}/{agent_label('ben')}.json",
                 {"EndConferenceOnExit": "true"}),
                ("POST", f"{participants}/{agent_label('ana')}.json",
                 {"EndConferenceOnExit": "false"}),
                ("POST", caller, {"Hold": "false"}),
                ("DELETE", f"{participants}/{agent_label('ana')}.json", {})]
            assert len(api.requests) == 10  # and the caller was not redirected


STAND_IN_DEVICE = """
window.Twilio = { Device: class {
  constructor(token, options) { window.deviceToken = token; this.handlers = {}; }
  on(name, fn) { this.handlers[name] = fn; }
  async register() { this.handlers.registered && this.handlers.registered(); }
  updateToken(token) { window.deviceToken = token; }
} };
"""


def test_the_softphone_registers_a_device_with_a_token_for_the_agent(tmp_path, browser):
    """The page loads the shipped SDK file; a stand-in Device replaces it here (no
    Twilio account in tests) and must receive an access token for identity 'ana'."""
    import jwt

    token = secrets.token_hex(16)
    data = tmp_path / "data"
    Users(SqlUserTable(SQLiteStore(data / "ivr.sqlite3").connection)).add(
        "ana", "agent", PASSWORD)
    secret = secrets.token_hex(32)
    env = {"TWILIO_ACCOUNT_SID": "AC" + "1" * 32, "TWILIO_API_KEY": "SK" + "2" * 32,
           "TWILIO_API_SECRET": secret, "TWILIO_TWIML_APP_SID": "AP" + "3" * 32,
           "IVR_TWILIO_API_URL": "http://127.0.0.1:9"}
    with LoopbackServer(data, token, flows_dir=always_open_flows(tmp_path / "flows"),
                        workers=1, threads=8, extra_env=env) as srv:
        context = browser.new_context()
        sdk = []
        context.route("**/vendor/twilio-voice-sdk/twilio.min.js", lambda route: (
            sdk.append(route.request.url),
            route.fulfill(body=STAND_IN_DEVICE, content_type="text/javascript")))
        page = context.new_page()
        page.set_default_timeout(15000)
        page.goto(srv.url + "/login")
        page.get_by_label("Username").fill("ana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text("Softphone ready (client:ana)").wait_for()
        assert sdk, "the page must load the SDK shipped in static/vendor"
        claims = jwt.decode(page.evaluate("window.deviceToken"), secret, algorithms=["HS256"])
        assert claims["grants"]["identity"] == "ana"
        assert 0 < claims["exp"] - time.time() <= 600  # short-lived
        context.close()
