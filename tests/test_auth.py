"""Users, sign-in, roles, CSRF and session expiry of the pages."""

from __future__ import annotations

import datetime as dt
import io
import re
import stat

import pytest
from conftest import FLOWS, OPEN
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.cli import main
from ivr.live.calls_store import SQLiteStore
from ivr.users import (
    LOCK_SECONDS,
    MAX_FAILURES,
    MemoryUserTable,
    SqlUserTable,
    UserError,
    Users,
)
from ivr.web import create_app
from ivr.web.settings import Settings

PASSWORD = "correct horse battery"


class Clock:
    def __init__(self, at: dt.datetime = OPEN) -> None:
        self.at = at

    def __call__(self) -> dt.datetime:
        return self.at


def make_app(tmp_path=None, clock=None, **extra):
    options = dict(flows_dir=FLOWS, store="memory", auth_token="t", reload_interval_s=0,
                   routing_tick_s=0)
    if tmp_path is not None:
        options.update(store="sqlite", data_dir=tmp_path)
    options.update(extra)
    return create_app(Settings(**options), clock=clock or Clock())


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def page(client, path):
    return client.get(path, headers={"Accept": "text/html"})


def sign_in(client, name, password=PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": token})


# ------------------------------------------------------------------ users


@pytest.mark.parametrize("table", ["memory", "sqlite"])
def test_users_add_verify_reset_remove_list(tmp_path, table):
    t = MemoryUserTable() if table == "memory" else SqlUserTable(
        SQLiteStore(tmp_path / "s.sqlite3").connection)
    users = Users(t)
    ana = users.add("ana", "agent", PASSWORD)
    assert ana.agent_id == "ana"  # an agent works as the router's agent of their name
    users.add("sam", "supervisor", PASSWORD)
    assert users.verify("ana", PASSWORD) == ana
    assert users.verify("ana", "wrong password") is None
    assert users.verify("nobody", PASSWORD) is None
    assert [u.name for u in users.list()] == ["ana", "sam"]
    with pytest.raises(UserError, match="already exists"):
        users.add("ana", "agent", PASSWORD)
    renewed = users.reset("ana", "another long one")
    assert renewed.stamp != ana.stamp
    assert users.verify("ana", PASSWORD) is None
    assert users.verify("ana", "another long one") == renewed
    users.remove("sam")
    assert users.get("sam") is None
    with pytest.raises(UserError, match="no user 'sam'"):
        users.remove("sam")


def test_passwords_are_stored_as_scrypt_hashes_only(tmp_path, monkeypatch):
    monkeypatch.setattr("ivr.users.SCRYPT_N", 2 ** 14)  # production's cost
    store = SQLiteStore(tmp_path / "s.sqlite3")
    Users(SqlUserTable(store.connection)).add("ana", "agent", PASSWORD)
    (stored,) = store.connection().execute("SELECT password FROM users").fetchone()
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored


@pytest.mark.parametrize("name,role,password,words", [
    ("ana", "boss", PASSWORD, "role: 'boss'"),
    ("ana", "agent", "short", "password: must be 8"),
    ("../x", "agent", PASSWORD, "name: '../x'"),
])
def test_bad_users_are_refused_naming_the_field(name, role, password, words):
    with pytest.raises(UserError, match=re.escape(words)):
        Users(MemoryUserTable()).add(name, role, password)


def test_lock_out_after_repeated_failures_then_time_or_reset_unlocks():
    now = [1000.0]
    users = Users(MemoryUserTable(), clock=lambda: now[0])
    users.add("ana", "agent", PASSWORD)
    for _ in range(MAX_FAILURES):
        assert users.verify("ana", "not the password") is None
    assert users.locked("ana")
    assert users.verify("ana", PASSWORD) is None  # even the right password, while locked
    now[0] += LOCK_SECONDS + 1
    assert users.verify("ana", PASSWORD) is not None
    for _ in range(MAX_FAILURES):
        users.verify("ana", "not the password")
    users.reset("ana", PASSWORD)
    assert users.verify("ana", PASSWORD) is not None


@settings(max_examples=25, deadline=None)
@given(st.text(max_size=40))
def test_any_wrong_password_is_refused(guess):
    users = Users(MemoryUserTable())
    users.add("ana", "agent", PASSWORD)
    assert (users.verify("ana", guess) is not None) == (guess == PASSWORD)


def test_cli_users_add_list_reset_remove(tmp_path, capsys, monkeypatch):
    d = ["--data-dir", str(tmp_path)]
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "ana", "--role", "agent", "--password-stdin", *d]) == 0
    assert main(["users", "add", "sam", "--role", "supervisor", *d]) == 0
    out = capsys.readouterr().out
    assert "added agent 'ana' as agent 'ana'" in out
    generated = re.search(r"password: (\S+)", out).group(1)
    users = Users(SqlUserTable(SQLiteStore(tmp_path / "ivr.sqlite3").connection))
    assert users.verify("ana", PASSWORD) and users.verify("sam", generated)
    assert main(["users", "list", *d]) == 0
    assert capsys.readouterr().out.splitlines() == ["ana\tagent\tana", "sam\tsupervisor\t-"]
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main(["users", "reset", "ana", "--password-stdin", *d]) == 2
    assert "password: must be 8" in capsys.readouterr().err
    assert main(["users", "remove", "sam", *d]) == 0
    assert main(["users", "remove", "sam", *d]) == 2
    assert capsys.readouterr().err.strip() == "error: no user 'sam'"
    with pytest.raises(SystemExit) as exc:
        main(["users", "add", "x", "--role", "boss", *d])
    assert exc.value.code == 2


# ------------------------------------------------------------------ sign-in


def test_sign_in_sets_a_hardened_cookie_and_lands_on_the_role_page():
    app = make_app(public_url="https://ivr.example")
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'for="username">Username<' in page and 'for="password">Password<' in page
    assert ">Sign in</button>" in page
    response = sign_in(client, "ana")
    assert response.status_code == 302 and response.location == "/agent"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Expires=" in cookie
    assert client.get("/agent").status_code == 200


def test_wrong_password_is_a_401_with_a_message_and_no_session():
    app = make_app()
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    client = app.test_client()
    response = sign_in(client, "ana", "nope nope nope")
    assert response.status_code == 401
    assert "Wrong username or password" in response.get_data(as_text=True)
    assert page(client, "/agent").status_code == 302


def test_pages_redirect_to_login_and_apis_answer_401():
    client = make_app().test_client()
    page = client.get("/wallboard", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.location.startswith("/login?next=/wallboard")
    api = client.get("/wallboard", headers={"Accept": "application/json"})
    assert api.status_code == 401 and "sign in" in api.get_json()["error"]


def test_roles_agent_supervisor_admin():
    app = make_app()
    users = app.extensions["ivr.users"]
    users.add("ana", "agent", PASSWORD)
    users.add("sam", "supervisor", PASSWORD)
    users.add("root", "admin", PASSWORD)
    expect = {"ana": {"/agent": 200, "/wallboard": 403, "/reports": 403},
              "sam": {"/agent": 403, "/wallboard": 200, "/reports": 200},
              "root": {"/agent": 200, "/wallboard": 200, "/reports": 200}}
    for name, pages in expect.items():
        client = app.test_client()
        sign_in(client, name)
        got = {p: client.get(p, headers={"Accept": "text/html"}).status_code for p in pages}
        assert got == pages, name
        nav = page(client, "/reports" if name != "ana" else "/agent").get_data(as_text=True)
        assert ('href="/admin/flows">Flows' in nav) == (name == "root")
    forbidden = app.test_client()
    sign_in(forbidden, "ana")
    assert forbidden.get("/wallboard", headers={"Accept": "application/json"}).get_json() == {
        "error": "forbidden: this needs the role supervisor"}


def test_every_state_changing_request_with_the_cookie_needs_the_csrf_token():
    app = make_app()
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    client = app.test_client()
    # The login form itself needs the session's token (no login CSRF).
    assert client.post("/login", data={"username": "ana", "password": PASSWORD}
                       ).status_code == 403
    sign_in(client, "ana")
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.get("/agent").status_code == 200  # still signed in
    token = csrf_of(client.get("/agent").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert page(client, "/agent").status_code == 302  # signed out


def test_sessions_expire_and_a_reset_ends_them():
    clock = Clock()
    app = make_app(clock=clock, session_hours=1)
    users = app.extensions["ivr.users"]
    users.add("ana", "agent", PASSWORD)
    client = app.test_client()
    sign_in(client, "ana")
    clock.at = OPEN + dt.timedelta(minutes=59)
    assert client.get("/agent").status_code == 200
    clock.at = OPEN + dt.timedelta(minutes=61)
    assert page(client, "/agent").status_code == 302
    clock.at = OPEN
    other = app.test_client()
    sign_in(other, "ana")
    assert other.get("/agent").status_code == 200
    users.reset("ana", "a brand new password")
    assert page(other, "/agent").status_code == 302


def test_next_never_leaves_the_site():
    app = make_app()
    app.extensions["ivr.users"].add("sam", "supervisor", PASSWORD)
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": "sam", "password": PASSWORD,
                                           "csrf_token": token,
                                           "next": "//evil.example/x"})
    assert response.location == "/wallboard"


def test_secret_key_is_generated_once_into_the_data_dir_with_mode_0600(tmp_path):
    first = make_app(tmp_path)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert make_app(tmp_path).secret_key == first.secret_key
    assert make_app(tmp_path, secret_key="from-the-env").secret_key == "from-the-env"


def test_every_state_changing_route_refuses_a_session_without_its_csrf_token():
    app = make_app()
    app.extensions["ivr.users"].add("root", "admin", PASSWORD)
    client = app.test_client()
    sign_in(client, "root")
    checked = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "PATCH", "DELETE"}):
            path = rule.rule
            for arg in rule.arguments:
                path = path.replace(f"<{arg}>", "x").replace(f"<path:{arg}>", "x")
            response = client.open(path, method=method, json={},
                                   headers={"Accept": "application/json"})
            assert response.status_code == 403, (method, rule.rule)
            checked.append(rule.rule)
    assert {"/login", "/logout", "/agent/presence", "/agent/calls/<call_id>/<action>"} <= set(
        checked)


def test_agents_cannot_read_the_wallboard_reports_or_explanations():
    app = make_app()
    app.extensions["ivr.users"].add("ana", "agent", PASSWORD)
    client = app.test_client()
    sign_in(client, "ana")
    for path in ("/wallboard/state", "/wallboard/events", "/wallboard/calls/CA1",
                 "/wallboard/intervals", "/reports"):
        response = client.get(path, headers={"Accept": "application/json"})
        assert response.status_code == 403, path


def test_a_supervisor_session_cannot_edit_flows():
    app = make_app(admin_token="admin-secret-token")
    app.extensions["ivr.users"].add("sam", "supervisor", PASSWORD)
    client = app.test_client()
    sign_in(client, "sam")
    token = csrf_of(page(client, "/wallboard").get_data(as_text=True))
    response = client.post("/admin/flows/reload", headers={"X-CSRF-Token": token,
                                                           "Accept": "application/json"})
    assert response.status_code == 401
