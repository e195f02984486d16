"""Live KPIs from what the system stored: the IVR sessions, the routing decisions, and
the floor's holds, transfers and dispositions.

Each call becomes one flat :class:`CallFact`; the KPIs are pure functions of a list of
facts (``kpis``), with the definitions printed beside the figures (``DEFINITIONS``, the
meanings of the project's design notes). ``ivr report`` and ``/reports`` show the same.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from zoneinfo import ZoneInfo

from ivr.engine.session import Session
from ivr.floor import FloorEvent
from routing import RoutingPolicy

SELF_SERVICE = "(self-service)"
NONE = "(none)"
BY = ("queue", "intent", "flow")
KEYS = ("offered", "answered", "abandoned", "abandon_rate", "service_level", "asa_seconds",
        "aht_seconds", "transfer_rate", "misroute_rate", "fcr", "containment", "csat", "ces")
DEFINITIONS = {
    "calls": "calls that reached the IVR",
    "offered": "calls offered to an agent queue (by the IVR or an agent's transfer)",
    "answered": "offered calls an agent accepted",
    "abandoned": "offered calls whose caller hung up before an agent accepted",
    "abandon_rate": "abandoned / offered",
    "service_level": "calls answered within their queue's threshold (routing policy) / "
                     "offered; every abandoned call stays in the denominator",
    "asa_seconds": "mean wait of answered calls, from entering the queue to the first "
                   "agent's accept",
    "aht_seconds": "mean of talk + hold + after-call work (wrap-up until the disposition, "
                   "or the policy's wrap-up time) over answered calls, every agent leg",
    "transfers": "transfers agents made of answered calls",
    "transfer_rate": "answered calls transferred at least once / answered",
    "misroute_rate": "answered calls transferred with reason 'misrouted' / answered",
    "fcr": "answered calls resolved at the first contact (disposition 'resolved', no "
           "transfer) with no repeat call from the same customer about the same intent "
           "within the policy's fcr_repeat_days / answered",
    "containment": "calls that ended in self-service with no repeat call from the same "
                   "customer within the policy's containment_repeat_hours / calls",
    "csat": "share of 4s and 5s among CSAT answers (1-5)",
    "ces": "mean CES answer (1-7, lower is better)",
    "ivr_seconds": "mean time in the IVR, from the call's start to its queue (or its end)",
    "same customer": "the account found by the IVR, else the caller ID",
    "same intent": "the intent an agent corrected to, else the IVR's",
}


@dataclass(frozen=True)
class CallFact:
    """One call, flat: what the IVR, the router and the agents recorded about it."""

    call_id: str
    flow_id: str
    started_at: float
    customer: str | None = None
    intent: str | None = None  # the IVR's
    corrected_intent: str | None = None
    text: str | None = None  # the caller's words the IVR classified
    outcome: str | None = None
    ivr_seconds: float | None = None
    queue: str | None = None  # the first queue
    offered: bool = False
    answered: bool = False
    abandoned: bool = False
    within_sl: bool = False
    wait_seconds: float | None = None
    handle_seconds: float = 0.0  # talk + hold + wrap-up, every leg
    transfers: tuple[str, ...] = ()  # reasons
    disposition: str | None = None  # the last one
    csat: int | None = None
    ces: int | None = None

    @property
    def final_intent(self) -> str | None:
        return self.corrected_intent or self.intent

    @property
    def self_service(self) -> bool:
        return self.outcome == "completed_in_ivr" and not self.offered


# ------------------------------------------------------------------ facts


def build_fact(session: Session, decisions: list[dict[str, Any]], events: list[FloorEvent],
               policy: RoutingPolicy) -> CallFact:
    """The fact of one call from its session, routing decisions and floor events."""
    data = session.data
    started = session.started_at.timestamp()
    decisions = sorted(decisions, key=lambda d: d["seq"])
    enqueued = (decisions[0]["time"] - decisions[0].get("waited", 0.0)) if decisions else None
    accepts = [d for d in decisions if d["kind"] == "accepted"]
    answered_at = accepts[0]["time"] if accepts else None
    queue = decisions[0]["queue"] if decisions else None
    abandoned = any(d["kind"] == "abandoned" for d in decisions) and answered_at is None
    wait = answered_at - enqueued if answered_at is not None and enqueued is not None else None
    threshold = (policy.queues[queue].service_level.threshold_seconds
                 if queue in policy.queues else 20.0)
    survey: dict[str, Any] = data["survey"] if isinstance(data.get("survey"), dict) else {}
    # The call's outcome is the last agent's disposition (an agent who transferred it may
    # finish their wrap-up later); the correction is the last one any agent made.
    dispositions = [e for e in events if e.kind == "disposition"]
    final_agent = accepts[-1].get("agent_id") if accepts else None
    finals = [e for e in dispositions if e.agent_id == final_agent] or dispositions
    last = finals[-1].data if finals else {}
    corrected = [e.data["corrected_intent"] for e in dispositions
                 if e.data.get("corrected_intent")]
    nlu: dict[str, Any] = data["nlu"] if isinstance(data.get("nlu"), dict) else {}
    end = session.updated_at.timestamp()
    return CallFact(
        call_id=session.call_id, flow_id=session.flow_id, started_at=started,
        customer=_customer(data), intent=_str(data.get("intent")),
        corrected_intent=_str(corrected[-1]) if corrected else None,
        text=_str(nlu.get("text")),
        outcome=session.outcome, queue=queue,
        ivr_seconds=max(0.0, (enqueued if enqueued is not None else end) - started),
        offered=bool(decisions), answered=answered_at is not None, abandoned=abandoned,
        within_sl=wait is not None and wait <= threshold, wait_seconds=wait,
        handle_seconds=_handle_seconds(decisions, events, policy.wrap_up_seconds),
        transfers=tuple(str(e.data.get("reason")) for e in events if e.kind == "transfer"),
        disposition=_str(last.get("disposition")),
        csat=_int(survey.get("csat")), ces=_int(survey.get("ces")))


def _handle_seconds(decisions: list[dict[str, Any]], events: list[FloorEvent],
                    default_wrap: float) -> float:
    """Talk and hold (accept to complete of each leg) plus after-call work (complete to
    that agent's disposition, else the policy's wrap-up time)."""
    total = 0.0
    accepted: dict[str, float] = {}
    for d in decisions:
        if d["kind"] == "accepted" and d.get("agent_id"):
            accepted[d["agent_id"]] = d["time"]
        elif d["kind"] == "completed" and d.get("agent_id") in accepted:
            agent = d["agent_id"]
            total += d["time"] - accepted.pop(agent)
            done = [e.at for e in events if e.agent_id == agent and e.at >= d["time"]
                    and e.kind in ("disposition",)]
            total += (done[0] - d["time"]) if done else default_wrap
    return total


def _customer(data: Mapping[str, Any]) -> str | None:
    customer = data.get("customer")
    if isinstance(customer, dict) and customer.get("account_number"):
        return f"account:{customer['account_number']}"
    caller = data.get("caller")
    return f"caller:{caller}" if isinstance(caller, str) and caller else None


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def collect(store: Any, decisions_of: Any, floor_log: Any, policy: RoutingPolicy,
            start: dt.datetime, end: dt.datetime) -> list[CallFact]:
    """Facts of the calls that started in [start, end), sorted by start."""
    facts = []
    # A call is last updated after it starts, and within a day of it (no call lasts
    # longer): the time index on sessions narrows the read to the range asked for.
    for session in store.sessions_since(start.timestamp(), end.timestamp() + 86400):
        if not start <= session.started_at < end:
            continue
        facts.append(build_fact(session, decisions_of(session.call_id),
                                floor_log.events(call_id=session.call_id), policy))
    return sorted(facts, key=lambda f: f.started_at)


def day_range(first: dt.date, last: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """[first 00:00, the day after last 00:00) in the contact center's time zone."""
    zone = ZoneInfo(tz)
    return (dt.datetime.combine(first, dt.time(), zone),
            dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone))


def facts_for(app: Any, first: dt.date | dt.datetime, last: dt.date | dt.datetime,
              repeat_days: float | None = None) -> list[CallFact]:
    """The facts of a web app's stores, for the days first..last (and ``repeat_days``
    more, for repeat contacts)."""
    routing = app.extensions["ivr.routing"]
    policy = routing.state.query(lambda r: r.policy)
    tz = routing.timezone
    first_d = first.astimezone(ZoneInfo(tz)).date() if isinstance(first, dt.datetime) else first
    last_d = last.astimezone(ZoneInfo(tz)).date() if isinstance(last, dt.datetime) else last
    start, end = day_range(first_d, last_d, tz)
    end += dt.timedelta(days=repeat_days or 0)
    return collect(app.extensions["ivr.store"], routing.state.decisions,
                   app.extensions["ivr.floor"], policy, start, end)


# ------------------------------------------------------------------ KPIs


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return round(sum(values) / len(values), 2) if values else None


def repeats(facts: list[CallFact], within_s: float, same_intent: bool
            ) -> set[str]:
    """Call ids followed by another call of the same customer (and intent) in time."""
    by_customer: dict[str, list[CallFact]] = defaultdict(list)
    for f in facts:
        if f.customer:
            by_customer[f.customer].append(f)
    out = set()
    for calls in by_customer.values():
        calls.sort(key=lambda f: f.started_at)
        for i, f in enumerate(calls):
            for g in calls[i + 1:]:
                if g.started_at - f.started_at > within_s:
                    break
                if not same_intent or g.final_intent == f.final_intent:
                    out.add(f.call_id)
                    break
    return out


@dataclass
class Windows:
    """Repeat-contact windows, from the routing policy's ``floor`` section."""

    fcr_s: float = 7 * 86400
    containment_s: float = 24 * 3600
    fcr_repeats: set[str] = field(default_factory=set)
    contained_repeats: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, policy: RoutingPolicy, every: list[CallFact]) -> Windows:
        w = cls(policy.floor.fcr_repeat_days * 86400,
                policy.floor.containment_repeat_hours * 3600)
        w.fcr_repeats = repeats(every, w.fcr_s, same_intent=True)
        w.contained_repeats = repeats(every, w.containment_s, same_intent=False)
        return w


def kpis(facts: list[CallFact], windows: Windows) -> dict[str, Any]:
    """The KPIs of some calls (numbers, or None where there is nothing to divide)."""
    offered = [f for f in facts if f.offered]
    answered = [f for f in offered if f.answered]
    abandoned = [f for f in offered if f.abandoned]
    transferred = [f for f in answered if f.transfers]
    resolved = [f for f in answered if not f.transfers and f.disposition == "resolved"
                and f.call_id not in windows.fcr_repeats]
    contained = [f for f in facts if f.self_service
                 and f.call_id not in windows.contained_repeats]
    csat = [f.csat for f in facts if f.csat is not None]
    return {
        "calls": len(facts),
        "offered": len(offered), "answered": len(answered), "abandoned": len(abandoned),
        "abandon_rate": _ratio(len(abandoned), len(offered)),
        "service_level": _ratio(sum(f.within_sl for f in answered), len(offered)),
        "asa_seconds": _mean(f.wait_seconds for f in answered if f.wait_seconds is not None),
        "aht_seconds": _mean(f.handle_seconds for f in answered),
        "transfers": sum(len(f.transfers) for f in answered),
        "transfer_rate": _ratio(len(transferred), len(answered)),
        "misroute_rate": _ratio(sum("misrouted" in f.transfers for f in answered),
                                len(answered)),
        "fcr": _ratio(len(resolved), len(answered)),
        "containment": _ratio(len(contained), len(facts)),
        "csat": _ratio(sum(c >= 4 for c in csat), len(csat)),
        "ces": _mean(f.ces for f in facts if f.ces is not None),
        "ivr_seconds": _mean(f.ivr_seconds for f in facts if f.ivr_seconds is not None),
    }


def group_key(fact: CallFact, by: str) -> str:
    if by == "queue":
        return fact.queue or SELF_SERVICE
    if by == "intent":
        return fact.final_intent or NONE
    return fact.flow_id


def misroutes(facts: list[CallFact], limit: int = 10) -> list[dict[str, Any]]:
    """The IVR intents most often misrouted (transfers with reason 'misrouted' / answered
    calls of that intent), with the caller phrases that were misrouted."""
    answered: dict[str, list[CallFact]] = defaultdict(list)
    for f in facts:
        if f.answered:
            answered[f.intent or NONE].append(f)
    rows: list[dict[str, Any]] = []
    for intent, calls in answered.items():
        bad = [f for f in calls if "misrouted" in f.transfers]
        if bad:
            rows.append({"intent": intent, "answered": len(calls), "misrouted": len(bad),
                         "misroute_rate": _ratio(len(bad), len(calls)),
                         "corrected_to": sorted({f.corrected_intent for f in bad
                                                 if f.corrected_intent}),
                         "phrases": [f.text for f in bad if f.text][:5]})
    rows.sort(key=lambda r: (-r["misroute_rate"], -r["misrouted"], r["intent"]))
    return rows[:limit]


def report(facts: list[CallFact], every: list[CallFact], policy: RoutingPolicy,
           by: str | None = None, period: tuple[str, str] | None = None) -> dict[str, Any]:
    """The whole report: the KPIs of ``facts`` (``every`` also holds the later calls that
    count as repeats), per ``by`` group when asked, the misroutes, the definitions."""
    windows = Windows.of(policy, every)
    out: dict[str, Any] = kpis(facts, windows)
    if period:
        out["from"], out["to"] = period
    if by is not None:
        groups: dict[str, list[CallFact]] = defaultdict(list)
        for f in facts:
            groups[group_key(f, by)].append(f)
        out["by"] = [{"key": key, **kpis(group, windows)} for key, group in sorted(groups.items())]
    out["misroutes"] = misroutes(facts)
    out["definitions"] = dict(DEFINITIONS)
    return out


def corrections(facts: list[CallFact]) -> list[tuple[str, str]]:
    """(caller's words, the intent the agent corrected to) of every corrected call."""
    return [(f.text, f.corrected_intent) for f in facts
            if f.text and f.corrected_intent and f.corrected_intent != f.intent]


def day_intervals(facts: list[CallFact], now: dt.datetime, tz: str, policy: RoutingPolicy,
                  minutes: int = 30) -> list[dict[str, Any]]:
    """Today's calls per interval: offered, answered, abandoned and service level."""
    zone = ZoneInfo(tz)
    day = now.astimezone(zone).date()
    start = dt.datetime.combine(day, dt.time(), zone).timestamp()
    buckets: dict[int, list[CallFact]] = defaultdict(list)
    for f in facts:
        if start <= f.started_at < start + 86400:
            buckets[int((f.started_at - start) // (minutes * 60))].append(f)
    out = []
    for k in sorted(buckets):
        at = dt.datetime.fromtimestamp(start + k * minutes * 60, zone)
        calls = buckets[k]
        offered = [f for f in calls if f.offered]
        out.append({"interval": at.strftime("%H:%M"), "calls": len(calls),
                    "offered": len(offered), "answered": sum(f.answered for f in offered),
                    "abandoned": sum(f.abandoned for f in offered),
                    "service_level": _ratio(sum(f.within_sl for f in offered
                                                if f.answered), len(offered))})
    return out


# ------------------------------------------------------------------ output


def as_csv(result: dict[str, Any]) -> str:
    """One row per group (or one row for the whole), the KPI keys as columns."""
    columns = ["key", "calls", *KEYS, "ivr_seconds"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    rows = result.get("by") or [{"key": "all", **result}]
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buf.getvalue()


def as_text(result: dict[str, Any]) -> str:
    """The figures, then their definitions (as the simulator prints its summary)."""
    def show(value: Any, key: str) -> str:
        if value is None:
            return "-"
        if key in ("abandon_rate", "service_level", "transfer_rate", "misroute_rate", "fcr",
                   "containment", "csat"):
            return f"{100 * value:.1f}%"
        return str(value)

    keys = ["calls", *KEYS, "ivr_seconds"]
    lines = [f"Report {result.get('from', '')} to {result.get('to', '')}".rstrip()]
    width = max(len(k) for k in keys)
    lines += [f"  {k:<{width}}  {show(result.get(k), k)}" for k in keys]
    for row in result.get("by", []):
        lines.append(f"\n  {row['key']}: " + ", ".join(
            f"{k} {show(row.get(k), k)}" for k in ("offered", "answered", "service_level",
                                                   "transfer_rate", "fcr", "csat")))
    if result.get("misroutes"):
        lines.append("\nMost misrouted intents:")
        for m in result["misroutes"]:
            lines.append(f"  {m['intent']}: {m['misrouted']}/{m['answered']} misrouted"
                         + (f", e.g. {json.dumps(m['phrases'][0])}" if m["phrases"] else ""))
    lines.append("\nDefinitions:")
    lines += [f"  {k}: {v}" for k, v in result["definitions"].items()]
    return "\n".join(lines) + "\n"
