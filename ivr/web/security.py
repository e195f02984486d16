"""Request authentication: Twilio signatures on the voice webhooks, bearer tokens on
the admin API."""

from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Any, Callable
from urllib.parse import quote

from flask import Response, current_app, jsonify, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def public_url() -> str | None:
    """The URL Twilio requested, exactly as Twilio signed it: the configured public base
    URL plus the path and query as they came over the wire (percent-escapes untouched).
    Without a public URL, the request's own host, only if it is an allowed host (a
    spoofed ``Host`` header must not choose the URL a signature is checked against);
    None when it is not."""
    settings = current_app.config["IVR"]
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw or not raw.startswith("/"):
        raw = quote(request.path) + (f"?{request.query_string.decode('latin-1')}"
                                     if request.query_string else "")
    if settings.public_url:
        return settings.public_url.rstrip("/") + raw
    host = request.host.lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if host not in settings.allowed_hosts and name not in settings.allowed_hosts:
        return None
    return f"{request.scheme}://{request.host}{raw}"


class _AllValues:
    """A form as the twilio library's validator reads a multi-valued one: its keys, and
    ``getall`` for every value of a key. (Handed werkzeug's form itself, the validator
    finds ``getlist`` only after an AttributeError per key, twice per request.)"""

    def __init__(self, form: Any) -> None:
        self._form = form

    def __iter__(self) -> Any:
        return iter(self._form)

    def __len__(self) -> int:
        return len(self._form)

    def getall(self, key: str) -> list[str]:
        return list(self._form.getlist(key))


def twilio_signature_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject (403, nothing changed) a request whose X-Twilio-Signature does not match.
    Repeated form keys are checked as the twilio library does: every value counts."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        settings = current_app.config["IVR"]
        if settings.validate_signatures:
            signature = request.headers.get("X-Twilio-Signature", "")
            token = settings.auth_token
            url = public_url()
            if url is None:
                log.warning("rejected webhook: Host is not an allowed host; set "
                            "IVR_PUBLIC_URL or IVR_ALLOWED_HOSTS", extra={"path": request.path})
                return Response("Forbidden: this Host is not trusted; set IVR_PUBLIC_URL "
                                "(--public-url) to the URL Twilio calls\n", 403,
                                mimetype="text/plain")
            if not token or not signature or not RequestValidator(token).validate(
                    url, _AllValues(request.form), signature):
                log.warning("rejected webhook: bad or missing Twilio signature",
                            extra={"path": request.path, "has_token": bool(token),
                                   "has_signature": bool(signature)})
                return Response("Forbidden: invalid or missing X-Twilio-Signature\n", 403,
                                mimetype="text/plain")
        return view(*args, **kwargs)

    return checked


def _bearer_is(expected: str | None) -> bool:
    given = request.headers.get("Authorization", "")
    return bool(expected) and given.startswith("Bearer ") and hmac.compare_digest(
        given.removeprefix("Bearer ").encode(), str(expected).encode())


def is_admin() -> bool:
    """The request carries the admin token (``IVR_ADMIN_TOKEN``)."""
    return _bearer_is(current_app.config["IVR"].admin_token)


def bearer_token_required(setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require ``Authorization: Bearer <token>`` matching the named setting; the admin
    token opens the agent API too."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            expected = getattr(current_app.config["IVR"], setting)
            if not expected:
                return jsonify(error=f"this API is disabled: set {setting.upper()} "
                                     f"(IVR_{setting.upper()})"), 503
            if not (_bearer_is(expected) or is_admin()):
                return jsonify(error="missing or wrong bearer token"), 401
            return view(*args, **kwargs)

        return checked

    return decorate
