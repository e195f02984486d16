"""The admin API (bearer token ``IVR_ADMIN_TOKEN``): loaded flows and their problems,
one call's session, route request and audit trail, and a reload on demand."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, current_app, jsonify, request

from ivr.flows.loader import spec_summary
from ivr.logs import redact
from ivr.web.security import bearer_token_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/flows")
def flows() -> Any:
    """A browser gets the flow studio's list page; an API client (bearer token, JSON)
    gets the loaded flows."""
    if "Authorization" not in request.headers and any(
            value == "text/html" for value, _ in request.accept_mimetypes):
        from ivr.web.studio import index

        return index()
    return _flows_json()


@bearer_token_required("admin_token")
def _flows_json() -> Any:
    registry = current_app.extensions["ivr.flows"]
    return jsonify(flows=[spec_summary(f) for f in registry.flows.values()],
                   problems=registry.problems)


@bp.post("/flows/reload")
@bearer_token_required("admin_token")
def reload() -> Any:
    registry = current_app.extensions["ivr.flows"]
    changed = registry.refresh(time.monotonic(), min_interval=0.0)
    return jsonify(reloaded=changed, problems=registry.problems)


@bp.get("/calls/<call_id>")
@bearer_token_required("admin_token")
def call(call_id: str) -> Any:
    store = current_app.extensions["ivr.store"]
    session = store.get_session(call_id)
    if session is None:
        return jsonify(error=f"no call {call_id}"), 404
    return jsonify(session=redact(session.model_dump(mode="json")),
                   route=redact(store.route_request(call_id)),
                   events=redact(store.events(call_id)))
