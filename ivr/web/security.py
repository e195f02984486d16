"""Request authentication: Twilio signatures on the voice webhooks, bearer tokens on
the admin API."""

from __future__ import annotations

import hmac
import logging
from functools import wraps
from typing import Any, Callable

from flask import Response, current_app, jsonify, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)


def public_url() -> str:
    """The URL Twilio requested, as Twilio saw it: the configured public base URL (behind
    a proxy or tunnel) plus this request's path and query, else the URL as received."""
    base = current_app.config["IVR"].public_url
    if base:
        path = request.full_path.rstrip("?") if request.query_string else request.path
        return base.rstrip("/") + path
    return request.url


def twilio_signature_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Reject (403, nothing changed) a request whose X-Twilio-Signature does not match."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        settings = current_app.config["IVR"]
        if settings.validate_signatures:
            signature = request.headers.get("X-Twilio-Signature", "")
            token = settings.auth_token
            url = public_url()
            if not token or not signature or not RequestValidator(token).validate(
                    url, request.form.to_dict(flat=True), signature):
                log.warning("rejected webhook: bad or missing Twilio signature",
                            extra={"path": request.path, "has_token": bool(token),
                                   "has_signature": bool(signature)})
                return Response("Forbidden: invalid or missing X-Twilio-Signature\n", 403,
                                mimetype="text/plain")
        return view(*args, **kwargs)

    return checked


def bearer_token_required(setting: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require ``Authorization: Bearer <token>`` matching the named setting."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def checked(*args: Any, **kwargs: Any) -> Any:
            expected = getattr(current_app.config["IVR"], setting)
            if not expected:
                return jsonify(error=f"this API is disabled: set {setting.upper()} "
                                     f"(IVR_{setting.upper()})"), 503
            given = request.headers.get("Authorization", "")
            if not given.startswith("Bearer ") or not hmac.compare_digest(
                    given.removeprefix("Bearer ").encode(), expected.encode()):
                return jsonify(error="missing or wrong bearer token"), 401
            return view(*args, **kwargs)

        return checked

    return decorate
