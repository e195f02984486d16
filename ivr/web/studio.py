"""The flow studio (admin role): edit a flow's YAML in the browser with inline problems
and the flow's picture, try a call against the draft, preview its impact on the
stored calls, publish, roll back, and compare versions.

Pages: ``/admin/flows`` (list) and ``/admin/flows/ID`` (editor). Every change is a
POST checked for the session's CSRF token (:mod:`ivr.web.auth`). Nothing here touches
a live call: a draft runs in the pure engine only, and publishing goes through
:mod:`ivr.flows.publishing`, which refuses a draft with problems.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import logging
import threading
from collections import OrderedDict
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template, request
from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import ValidationError

from ivr.engine import CallerInput, Dial, Enqueue, Gather, Hangup, Play, Say, Session, start, step
from ivr.errors import FlowError, IVRError, StoreError
from ivr.flows import flow_json_schema
from ivr.flows.graph import nodes_svg, render_svg
from ivr.flows.loader import MAX_FLOW_BYTES, Flow, FlowSpec, safe_yaml
from ivr.flows.locate import locate_all, node_lines
from ivr.flows.publishing import check_draft, publish, rollback
from ivr.flows.registry import FlowRegistry
from ivr.flows.versions import VersionStore
from ivr.flows.versions_cli import iso
from ivr.replay import impact, stored_calls
from ivr.web.auth import current_user, require_role

bp = Blueprint("studio", __name__, url_prefix="/admin/flows")
log = logging.getLogger("ivr.studio")
#: Longest publish message.
MAX_MESSAGE = 500
#: Longest answer typed in the test caller.
MAX_ANSWER = 500
#: Days of stored calls the impact preview may replay.
MAX_DAYS = 90
_cache: OrderedDict[tuple[Any, ...], tuple[Flow | None, list[str]]] = OrderedDict()
_cache_lock = threading.Lock()


def _registry() -> FlowRegistry:
    return current_app.extensions["ivr.flows"]  # type: ignore[no-any-return]


def _versions() -> VersionStore:
    versions = _registry().versions
    if versions is None:  # create_app always attaches one
        abort(503, "flow versions are not kept on this server")
    return versions


def _flow_id(flow_id: str) -> str:
    if flow_id not in _versions().flow_ids():
        abort(404, f"no flow '{flow_id}'")
    return flow_id


def _author() -> str:
    user = current_user()
    return user.name if user is not None else "unknown"


def _now() -> dt.datetime:
    return current_app.extensions["ivr.clock"]()  # type: ignore[no-any-return]


def _text() -> str:
    """The draft text of a JSON or form request, size-checked."""
    data = request.get_json(silent=True) if request.is_json else request.form
    text = (data or {}).get("text")
    if not isinstance(text, str):
        abort(400, "give the flow's YAML as 'text'")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FLOW_BYTES:
        abort(413, f"text: larger than {MAX_FLOW_BYTES} bytes")
    return text


def _checked(flow_id: str, text: str) -> tuple[Flow | None, list[str]]:
    """check_draft, remembered for the last few texts (the editor asks again as the
    admin types; trying a call asks on every answer)."""
    registry = _registry()
    key = (flow_id, hashlib.sha256(text.encode()).hexdigest(), _versions().live_stamp(),
           id(registry.extra_check))
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    result = check_draft(registry, flow_id, text)
    with _cache_lock:
        _cache[key] = result
        while len(_cache) > 16:
            _cache.popitem(last=False)
    return result


# ------------------------------------------------------------------ pages


def index() -> Any:
    """The list of flows (``GET /admin/flows`` from a browser; see :mod:`ivr.web.admin`)."""
    return _index()


@require_role("admin")
def _index() -> Any:
    versions = _versions()
    live = versions.live()
    rows = []
    for flow_id in versions.flow_ids():
        history = versions.history(flow_id)
        flow = _registry().get(flow_id)
        rows.append({"id": flow_id, "name": flow.spec.name if flow else "",
                     "live": live[flow_id].version if flow_id in live else None,
                     "versions": len(history), "draft": versions.draft(flow_id) is not None,
                     "updated": iso(history[0]["created_at"]) if history else None,
                     "subflow": bool(flow and flow.spec.subflow)})
    return render_template("studio_flows.html", flows=rows, problems=_registry().problems)


@bp.get("/<flow_id>")
@require_role("admin")
def editor(flow_id: str) -> Any:
    versions = _versions()
    _flow_id(flow_id)
    live = versions.live().get(flow_id)
    draft = versions.draft(flow_id)
    return render_template("studio_editor.html", flow_id=flow_id, live=live, draft=draft,
                           draft_at=iso(draft.updated_at) if draft else None,
                           text=draft.text if draft else (live.text if live else ""),
                           history=_history(flow_id), audit=_audit(flow_id))


@bp.get("/schema.json")
@require_role("admin")
def schema() -> Any:
    return jsonify(flow_json_schema())


def _history(flow_id: str) -> list[dict[str, Any]]:
    return [{**h, "created_at": iso(h["created_at"]), "published_at": iso(h["published_at"])}
            for h in _versions().history(flow_id)]


def _audit(flow_id: str) -> list[dict[str, Any]]:
    return [{**a, "at": iso(a["at"])} for a in reversed(_versions().audit(flow_id))]


@bp.get("/<flow_id>/history")
@require_role("admin")
def history(flow_id: str) -> Any:
    _flow_id(flow_id)
    return jsonify(history=_history(flow_id), audit=_audit(flow_id))


# ------------------------------------------------------------------ validate and draw


@bp.post("/<flow_id>/validate")
@require_role("admin")
def validate(flow_id: str) -> Any:
    """Check the draft as the admin types; keep it as the flow's draft; return the
    problems placed at their lines and the picture."""
    _flow_id(flow_id)
    text = _text()
    flow, problems = _checked(flow_id, text)
    try:
        live = _versions().live().get(flow_id)
        if live is not None and live.text == text:
            _versions().drop_draft(flow_id)  # nothing unpublished
        else:
            _versions().save_draft(flow_id, text, _author(), _now().timestamp())
    except StoreError:
        pass  # the draft is in the browser still; validation is what was asked
    return jsonify(ok=not problems, problems=_placed(text, problems),
                   svg=_picture(flow_id, text, flow), nodes=node_lines(text))


def _placed(text: str, problems: list[str]) -> list[dict[str, Any]]:
    return [{"line": p.line, "column": p.column, "message": p.message}
            for p in locate_all(text, problems)]


def _picture(flow_id: str, text: str, flow: Flow | None) -> str | None:
    """The SVG of the draft: the loaded flow when it loads, else the nodes as written
    (so the picture follows the text even while a target is misspelt). None when it cannot
    be drawn (a draft too broken to read, or no Graphviz on the server: logged)."""
    try:
        if flow is not None:
            return render_svg(flow)
        try:
            data = safe_yaml(text, flow_id)
            spec = FlowSpec.model_validate(data)
        except (FlowError, ValidationError, TypeError):
            return None
        if not spec.nodes:
            return None
        nodes = dict(spec.nodes)
        start_node = nodes.pop(spec.start, None)
        ordered = ({spec.start: start_node} if start_node is not None else {}) | nodes
        return nodes_svg(ordered, spec.escape.target, spec.name or flow_id)
    except IVRError as exc:
        log.warning("flow picture not drawn", extra={"flow": flow_id, "reason": str(exc)})
        return None


# ------------------------------------------------------------------ publish and roll back


@bp.post("/<flow_id>/publish")
@require_role("admin")
def publish_view(flow_id: str) -> Any:
    _flow_id(flow_id)
    text = _text()
    data = request.get_json(silent=True) if request.is_json else request.form
    message = str((data or {}).get("message") or "").strip()
    if not message:
        return jsonify(error="message: say why (it goes into the history)"), 400
    try:
        version = publish(_registry(), flow_id, text, _author(), message[:MAX_MESSAGE],
                          _now().timestamp())
    except FlowError as exc:
        _versions().log(flow_id, _author(), "refused", _now().timestamp(),
                        f"{len(exc.problems)} problem(s)")
        return jsonify(error="the draft has problems; nothing was published",
                       problems=_placed(text, exc.problems)), 422
    return jsonify(published=version.version, hash=version.hash, history=_history(flow_id),
                   audit=_audit(flow_id))


@bp.post("/<flow_id>/rollback/<int:number>")
@require_role("admin")
def rollback_view(flow_id: str, number: int) -> Any:
    _flow_id(flow_id)
    try:
        version = rollback(_registry(), flow_id, number, _author(), _now().timestamp())
    except FlowError as exc:
        return jsonify(error=exc.problems[0], problems=exc.problems[1:]), 422
    return jsonify(live=version.version, text=version.text, history=_history(flow_id),
                   audit=_audit(flow_id))


# ------------------------------------------------------------------ compare versions


@bp.get("/<flow_id>/diff")
@require_role("admin")
def diff(flow_id: str) -> Any:
    """Text and node differences between versions ``a`` and ``b`` (``b`` may be
    ``draft``)."""
    _flow_id(flow_id)
    versions = _versions()
    texts = {}
    for side in ("a", "b"):
        raw = request.args.get(side, "")
        if side == "b" and raw == "draft":
            draft = versions.draft(flow_id)
            texts[side] = draft.text if draft else ""
            continue
        if not raw.isdigit() or (found := versions.get(flow_id, int(raw))) is None:
            abort(400, f"{side}: give a version number of '{flow_id}'" +
                  (" or 'draft'" if side == "b" else ""))
        texts[side] = found.text
    lines = difflib.unified_diff(texts["a"].splitlines(), texts["b"].splitlines(),
                                 f"version {request.args['a']}", f"version {request.args['b']}",
                                 lineterm="")
    old, new = _spec_nodes(texts["a"]), _spec_nodes(texts["b"])
    return jsonify(diff="\n".join(lines),
                   added=sorted(set(new) - set(old)), removed=sorted(set(old) - set(new)),
                   changed=sorted(k for k in set(old) & set(new) if old[k] != new[k]),
                   svg=_picture(flow_id, texts["b"], None), svg_a=_picture(flow_id, texts["a"],
                                                                         None))


def _spec_nodes(text: str) -> dict[str, Any]:
    try:
        spec = FlowSpec.model_validate(safe_yaml(text, "version"))
    except (FlowError, ValidationError, TypeError):
        return {}
    return {k: n.model_dump(mode="json") for k, n in spec.nodes.items()}


# ------------------------------------------------------------------ try a call


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.secret_key), salt="ivr-studio-try")


@bp.post("/<flow_id>/try")
@require_role("admin")
def try_call(flow_id: str) -> Any:
    """One turn of a test call against the draft: start it (no ``state``), or answer
    (``digits`` and/or ``speech``). The call lives in the signed ``state`` the page
    sends back; nothing is stored and no router, queue or phone is involved."""
    _flow_id(flow_id)
    text = _text()
    data = request.get_json(silent=True) or {}
    flow, problems = _checked(flow_id, text)
    if flow is None:
        return jsonify(error="the draft does not load; fix the problems first",
                       problems=_placed(text, problems)), 422
    now = _now()
    state = data.get("state")
    if not state:
        caller = str(data.get("caller") or "+15005550006")[:32]
        actions, session = start(flow, "CA" + "0" * 32, caller, "+10000000000", now)
    else:
        try:
            session = Session.model_validate(_signer().loads(state))
        except (BadSignature, ValidationError):
            return jsonify(error="state: not a test call this server started"), 400
        digits, speech = data.get("digits") or None, data.get("speech") or None
        if digits is not None and (not isinstance(digits, str) or len(digits) > 32
                                   or any(c not in "0123456789*#" for c in digits)):
            return jsonify(error="digits: keypad keys 0-9, * and # only"), 400
        if speech is not None and (not isinstance(speech, str) or len(speech) > MAX_ANSWER):
            return jsonify(error=f"speech: text of at most {MAX_ANSWER} characters"), 400
        if session.status != "active":
            return jsonify(error="this test call has ended; start another"), 400
        actions, session = step(flow, session, CallerInput(digits, speech, 0.92), now)
    return jsonify(state=_signer().dumps(session.model_dump(mode="json")),
                   said=_said(actions), status=session.status, node=session.node,
                   outcome=session.outcome, route=session.route,
                   nlu=session.data.get("nlu"),
                   steps=[t for t in session.trail if t.get("turn") == session.turn])


def _said(actions: list[Any]) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Say):
            out.append(a.text)
        elif isinstance(a, Play):
            out.append(f"[audio {a.url}]")
        elif isinstance(a, Gather):
            out += [p.text if isinstance(p, Say) else f"[audio {p.url}]" for p in a.prompts]
        elif isinstance(a, Enqueue):
            out.append(f"[queued for '{a.request.queue}' "
                       f"(skills {a.request.skills or 'any'}, priority {a.request.priority})]")
        elif isinstance(a, Dial):
            out.append(f"[transferred to {a.number}]")
        elif isinstance(a, Hangup):
            out.append("[call ended]")
    return out


# ------------------------------------------------------------------ impact preview


@bp.post("/<flow_id>/impact")
@require_role("admin")
def impact_view(flow_id: str) -> Any:
    """Replay the last ``days`` of stored calls through the published version and the
    draft; counts per outcome, the calls that change, and paths no call reaches."""
    _flow_id(flow_id)
    text = _text()
    data = request.get_json(silent=True) or {}
    days = data.get("days", 7)
    if not isinstance(days, (int, float)) or not 0 < days <= MAX_DAYS:
        return jsonify(error=f"days: a number from 1 to {MAX_DAYS}"), 400
    draft, problems = _checked(flow_id, text)
    if draft is None:
        return jsonify(error="the draft does not load; fix the problems first",
                       problems=_placed(text, problems)), 422
    published = _registry().get(flow_id)
    if published is None:
        return jsonify(error=f"flow '{flow_id}' has no published version"), 409
    since = _now().timestamp() - days * 86400
    calls = stored_calls(current_app.extensions["ivr.store"], flow_id, since)
    return jsonify(days=days, **impact(published, draft, calls))
