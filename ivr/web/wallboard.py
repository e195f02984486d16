"""The supervisor wallboard (``/wallboard``): queues, agents and alerts, live."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ivr.web.auth import require_role

bp = Blueprint("wallboard", __name__)


@bp.get("/wallboard")
@require_role("supervisor")
def page() -> Any:
    return render_template("wallboard.html")
