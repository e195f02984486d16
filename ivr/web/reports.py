"""The reports page (``/reports``): the live KPIs of a date range, per queue, intent or
flow, with charts, the most misrouted intents and the definitions (the same figures as
``ivr report``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request

from ivr.report import BY, KEYS, facts_for, report
from ivr.web.auth import require_role, wants_json

bp = Blueprint("reports", __name__)
MAX_DAYS = 366


def _params() -> tuple[dt.date, dt.date, str | None] | str:
    """(first, last, by) from the query string, or the problem with it."""
    today = current_app.extensions["ivr.clock"]().astimezone(
        _zone()).date()
    try:
        first = dt.date.fromisoformat(request.args.get("from") or today.isoformat())
        last = dt.date.fromisoformat(request.args.get("to") or first.isoformat())
    except ValueError:
        return "from/to: dates as YYYY-MM-DD"
    if last < first:
        return f"to: {last} is before from {first}"
    if (last - first).days >= MAX_DAYS:
        return f"from/to: at most {MAX_DAYS} days at a time"
    by = request.args.get("by") or None
    if by is not None and by not in BY:
        return f"by: one of {', '.join(BY)}"
    return first, last, by


def _zone() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(current_app.extensions["ivr.routing"].timezone)


def _result(first: dt.date, last: dt.date, by: str | None) -> dict[str, Any]:
    routing = current_app.extensions["ivr.routing"]
    policy = routing.state.query(lambda r: r.policy)
    every = facts_for(current_app, first, last, repeat_days=policy.floor.fcr_repeat_days)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), _zone()).timestamp()
    facts = [f for f in every if f.started_at < end]
    return report(facts, every, policy, by=by, period=(first.isoformat(), last.isoformat()))


@bp.get("/reports")
@require_role("supervisor")
def page() -> Any:
    params = _params()
    if isinstance(params, str):
        if wants_json():
            return jsonify(error=params), 400
        return render_template("reports.html", error=params, result=None, keys=KEYS,
                               by_choices=BY, args=request.args), 400
    first, last, by = params
    result = _result(first, last, by)
    if wants_json():
        return jsonify(result)
    return render_template("reports.html", error=None, result=result, keys=KEYS,
                           by_choices=BY, first=first, last=last, by=by)
