"""Reading session data: dotted paths, prompt templates, branch conditions, hours."""

from __future__ import annotations

import datetime as dt
import re
import string
from typing import Any, Mapping
from zoneinfo import ZoneInfo

from ivr.flows.models import (
    WEEKDAYS,
    AllCondition,
    AnyCondition,
    BusinessHours,
    Condition,
    FlowSpec,
    Incident,
    IncidentCondition,
    NotCondition,
    OpenCondition,
    Text,
    VarCondition,
)

_MISSING = object()


def get_path(data: Mapping[str, Any], path: str, default: Any = None) -> Any:
    """``data['a']['b']`` for ``'a.b'``; ``default`` when any step is missing."""
    value: Any = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return default
    return value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``data['a']['b'] = value`` for ``'a.b'``, creating mappings on the way."""
    parts = path.split(".")
    target = data
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    target[parts[-1]] = value


class _Fill(string.Formatter):
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        return get_path(self.data, field_name, ""), field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        if isinstance(value, str) and value.isdigit() and format_spec == "digits":
            return " ".join(value)  # read an account number digit by digit
        return str(value) if format_spec in ("", "digits") else format(value, format_spec)


def render_text(text: Text, language: str, default_language: str,
                data: Mapping[str, Any]) -> str:
    """The prompt in the caller's language with ``{path}`` placeholders filled in.

    A placeholder with no value is left empty rather than read out as a brace.
    """
    if isinstance(text, list):  # segments in their own languages: the words, in order
        return " ".join(render_text(seg, next(iter(seg), language), default_language, data)
                        for seg in text)
    raw = text if isinstance(text, str) else text.get(language, text.get(default_language, ""))
    try:
        return _Fill(data).format(raw)
    except (ValueError, IndexError):
        return re.sub(r"[{}]", "", raw)  # a stray brace in admin text: speak the words


def holds(cond: Condition, spec: FlowSpec, data: Mapping[str, Any], now: dt.datetime) -> bool:
    """Whether a branch condition holds for this session at ``now``."""
    if isinstance(cond, VarCondition):
        other = get_path(data, cond.equals_var, _MISSING) if cond.equals_var else _MISSING
        return _var_holds(cond, get_path(data, cond.var, _MISSING), other)
    if isinstance(cond, OpenCondition):
        return is_open(spec.hours[cond.open], spec.timezone, now)
    if isinstance(cond, IncidentCondition):
        return incident_active(spec.incidents[cond.incident], spec.timezone, now)
    if isinstance(cond, AllCondition):
        return all(holds(c, spec, data, now) for c in cond.all)
    if isinstance(cond, AnyCondition):
        return any(holds(c, spec, data, now) for c in cond.any)
    assert isinstance(cond, NotCondition)
    return not holds(cond.not_, spec, data, now)


def _var_holds(cond: VarCondition, value: Any, other: Any) -> bool:
    fields = cond.model_fields_set
    present = value is not _MISSING and value is not None
    checks: list[bool] = []
    if "exists" in fields:
        checks.append(present == bool(cond.exists))
    if "equals" in fields:
        checks.append(present and _same(value, cond.equals))
    if "equals_var" in fields:
        checks.append(present and other is not _MISSING and _same(value, other))
    if "not_equals" in fields:
        checks.append(not (present and _same(value, cond.not_equals)))
    if "in_" in fields:
        checks.append(present and any(_same(value, v) for v in cond.in_ or []))
    if "contains" in fields:
        checks.append(present and str(cond.contains).casefold() in str(value).casefold())
    for name, cmp in (("gte", float.__ge__), ("lte", float.__le__)):
        if name in fields:
            bound = getattr(cond, name)
            checks.append(present and _number(value) is not None
                          and cmp(_number(value), float(bound)))  # type: ignore[arg-type]
    return all(checks)


def _same(a: Any, b: Any) -> bool:
    """Equality that forgives CSV/YAML typing: '1' == 1, 'true' == True, 'Gold' == 'gold'."""
    if isinstance(b, bool) or isinstance(a, bool):
        return _truthy(a) == _truthy(b)
    if _number(a) is not None and _number(b) is not None:
        return _number(a) == _number(b)
    return str(a).strip().casefold() == str(b).strip().casefold()


def _truthy(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    s = str(v).strip().casefold()
    return True if s in ("true", "yes", "y", "1") else False if s in ("false", "no", "n", "0",
                                                                       "") else None


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def is_open(hours: BusinessHours, flow_tz: str, now: dt.datetime) -> bool:
    """Whether ``now`` (timezone-aware) falls in the opening hours, holidays closed."""
    local = now.astimezone(ZoneInfo(hours.timezone or flow_tz))
    if local.date() in hours.holidays:
        return False
    hhmm = local.strftime("%H:%M")
    for r in hours.weekly.get(WEEKDAYS[local.weekday()], []):  # type: ignore[call-overload]
        start, end = r.split("-")
        if start <= hhmm < end:
            return True
    return False


def incident_active(incident: Incident, flow_tz: str, now: dt.datetime) -> bool:
    """Switched on by hand, or inside its scheduled window (naive times: the flow's zone)."""
    if incident.active:
        return True
    if incident.starts is None and incident.ends is None:
        return False
    tz = ZoneInfo(flow_tz)
    starts = _aware(incident.starts, tz)
    ends = _aware(incident.ends, tz)
    return (starts is None or starts <= now) and (ends is None or now < ends)


def _aware(t: dt.datetime | None, tz: ZoneInfo) -> dt.datetime | None:
    if t is None:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)
