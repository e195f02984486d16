"""Signing in to the pages: ``/login``, ``/logout``, the signed-in user, roles and CSRF.

A session is Flask's signed cookie (HttpOnly, SameSite=Lax, Secure when the public URL is
https) holding the user's name, their stamp (a reset or removal ends the session) and
the time of sign-in: it expires ``session_hours`` later whatever the browser does. Every
state-changing request that carries the session cookie must carry the session's CSRF
token too (form field ``csrf_token`` or header ``X-CSRF-Token``); webhooks and the bearer
token API carry no cookie and are checked by their own means.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import secrets
from functools import wraps
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ivr.users import User, Users
from ivr.web.settings import Settings

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
COOKIE = "ivr_session"
SECRET_FILE = "secret_key"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HOME = {"agent": "desktop.page", "supervisor": "wallboard.page", "admin": "wallboard.page"}


def init_app(app: Flask, users: Users) -> None:
    """Sessions, CSRF and the sign-in pages for ``app``."""
    settings: Settings = app.config["IVR"]
    app.extensions["ivr.users"] = users
    app.secret_key = secret_key(settings)
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(settings.public_url
                                   and settings.public_url.startswith("https://")),
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=settings.session_hours),
        SESSION_REFRESH_EACH_REQUEST=False,  # expiry counts from sign-in, not last click
    )
    app.session_interface = _CookieSessions()
    app.before_request(_check_csrf)
    app.context_processor(lambda: {"csrf_token": csrf_token, "current_user": current_user})
    app.register_blueprint(bp)


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for a request that
    carries no session cookie (every Twilio webhook): about 3 % of a webhook's CPU
    under load (``scripts/bench_live.py`` profiled with py-spy). The signer is still
    built, as before, to read a cookie and to write one."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def secret_key(settings: Settings) -> str:
    """``IVR_SECRET_KEY``, else a key generated once and kept in the data dir (mode 0600);
    the one-process memory store keeps a fresh key in memory."""
    if settings.secret_key:
        return settings.secret_key
    if settings.store == "memory":
        return secrets.token_hex(32)
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key + "\n")
    log.info("generated the session secret key", extra={"path": str(path)})
    return key


def users() -> Users:
    return current_app.extensions["ivr.users"]  # type: ignore[no-any-return]


def _now() -> float:
    return float(current_app.extensions["ivr.clock"]().timestamp())


# ------------------------------------------------------------------ who is signed in


def current_user() -> User | None:
    """The signed-in user of this request, or None (never signed in, expired, reset,
    removed)."""
    if "ivr.user" in g:
        return g.get("ivr.user")
    user = None
    name, stamp, at = session.get("user"), session.get("stamp"), session.get("at")
    if isinstance(name, str) and isinstance(at, (int, float)):
        found = users().get(name)
        fresh = _now() - at < current_app.config["IVR"].session_hours * 3600
        if found is not None and found.stamp == stamp and fresh:
            user = found
    setattr(g, "ivr.user", user)
    return user


def wants_json() -> bool:
    """An API caller (fetch, EventSource, curl) rather than a browser page load."""
    return not any(value == "text/html" for value, _ in request.accept_mimetypes)


def require_role(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Only signed-in users with one of ``roles`` (admins always): pages redirect to
    /login, APIs answer 401 JSON; a signed-in user without the role gets 403."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                if wants_json():
                    return jsonify(error="sign in first (POST /login)"), 401
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if not user.has_role(*roles):
                message = f"forbidden: this needs the role {' or '.join(roles)}"
                if wants_json():
                    return jsonify(error=message), 403
                return render_template("forbidden.html", message=message), 403
            return view(*args, **kwargs)

        return checked

    return decorate


# ------------------------------------------------------------------ CSRF


def csrf_token() -> str:
    """This session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _check_csrf() -> Any:
    """Refuse a state-changing request with the session cookie but not its token."""
    if request.method not in UNSAFE:
        return None
    if COOKIE not in request.cookies and request.endpoint != "auth.login":
        return None
    expected = session.get("csrf")
    given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token") or ""
    if isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode()):
        return None
    log.warning("refused a request without its CSRF token", extra={"path": request.path})
    message = "CSRF token missing or wrong: reload the page and try again"
    if wants_json():
        return jsonify(error=message), 403
    return Response(f"403 Forbidden: {message}\n", 403, mimetype="text/plain")


# ------------------------------------------------------------------ pages


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = _safe_next(request.values.get("next"))
    if request.method == "GET":
        return render_template("login.html", next=next_url, error=None)
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    user = users().verify(name, password)
    if user is None:
        log.warning("sign-in failed", extra={"user": name[:64]})
        return render_template("login.html", next=next_url, username=name,
                               error="Wrong username or password (after 5 failures in a row "
                                     "the account is locked for 15 minutes)."), 401
    session.clear()  # a new session: no fixation of a pre-login cookie
    session.permanent = True
    session.update(user=user.name, stamp=user.stamp, at=_now(),
                   csrf=secrets.token_urlsafe(32))
    setattr(g, "ivr.user", user)
    log.info("signed in", extra={"user": user.name, "role": user.role})
    return redirect(next_url or url_for(HOME[user.role]))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    if request.method == "GET":  # signing out changes state: a button posts it
        return render_template("logout.html")
    session.clear()
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site (no open redirect to another host)."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.get("/")
def home() -> Any:
    """Signed in: the user's page; otherwise the sign-in page."""
    user = current_user()
    return redirect(url_for(HOME[user.role] if user else "auth.login"))
