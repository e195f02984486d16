"""The reports page (``/reports``): the live KPIs of a date range, with their definitions."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from ivr.web.auth import require_role

bp = Blueprint("reports", __name__)


@bp.get("/reports")
@require_role("supervisor")
def page() -> Any:
    return render_template("reports.html")
