"""The conference bridge (``IVR_AGENT_BRIDGE=conference``): a call's room name and its
participants' labels, and what Twilio's conference status callbacks say of the room.

Each call has one room, named from its CallSid by a digest, so neither the name Twilio
shows in its console nor its logs carry the caller's number. The caller and each agent
leg join it with a label (``caller``, ``agent-<digest of the agent id>``), which the REST
API accepts in place of the participant's CallSid.

Twilio posts the callbacks of a room in any order and may repeat one: :func:`fold` keeps,
per conference, the latest state of each participant by the callback's
``SequenceNumber`` and an end once seen, so the same callbacks in any order and with any
repeats give the same :class:`Room`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from email.utils import parsedate_to_datetime
from typing import Any, Iterable, Mapping

#: Callback parameters kept from each event.
FIELDS = ("ConferenceSid", "StatusCallbackEvent", "CallSid", "ParticipantLabel", "Hold",
          "Muted", "SequenceNumber", "Timestamp")


def room_name(call_id: str) -> str:
    """The call's conference name: a digest of its CallSid (no phone number in it)."""
    return "ivr-" + hashlib.sha256(call_id.encode()).hexdigest()[:24]


def agent_label(agent_id: str) -> str:
    """An agent leg's participant label: safe in a URL path whatever the agent id."""
    return "agent-" + hashlib.sha256(agent_id.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Participant:
    call_sid: str
    label: str = ""
    present: bool = False
    hold: bool = False
    muted: bool = False
    seq: int = -1  # the SequenceNumber of the callback this state comes from


@dataclass(frozen=True)
class Conference:
    sid: str
    started_at: float = float("inf")  # earliest callback timestamp seen
    ended: bool = False
    participants: Mapping[str, Participant] = field(default_factory=dict)


@dataclass(frozen=True)
class Room:
    """Every conference a call's room has been (a room is made again after a requeue)."""

    conferences: Mapping[str, Conference] = field(default_factory=dict)

    def current(self) -> Conference | None:
        """The live conference of the call (the latest started that has not ended)."""
        live = [c for c in self.conferences.values() if not c.ended]
        return max(live, key=lambda c: (c.started_at, c.sid)) if live else None

    def sid_of(self, label: str) -> str | None:
        """The CallSid of the present participant with ``label`` in the live conference."""
        conf = self.current()
        for p in conf.participants.values() if conf else ():
            if p.label == label and p.present:
                return p.call_sid
        return None


def event_of(form: Mapping[str, str]) -> dict[str, Any]:
    """The parts of a conference status callback the fold needs (str values, as posted)."""
    return {k: str(form[k]) for k in FIELDS if form.get(k) not in (None, "")}


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _timestamp(value: Any) -> float:
    """Twilio's ``Timestamp`` (RFC 2822, e.g. 'Tue, 10 Sep 2019 19:13:22 +0000') in
    seconds; unreadable or missing: infinitely late."""
    try:
        return parsedate_to_datetime(str(value)).timestamp()
    except (TypeError, ValueError, IndexError):
        return _number(value, float("inf"))


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def fold(room: Room, event: Mapping[str, Any]) -> Room:
    """The room after one callback (order-insensitive, repeat-insensitive)."""
    sid = str(event.get("ConferenceSid") or "")
    if not sid:
        return room
    kind = str(event.get("StatusCallbackEvent") or "").removeprefix("conference-") \
        .removeprefix("participant-")
    conf = room.conferences.get(sid) or Conference(sid)
    at = _timestamp(event.get("Timestamp"))
    conf = replace(conf, started_at=min(conf.started_at, at), ended=conf.ended or kind == "end")
    call_sid = str(event.get("CallSid") or "")
    if call_sid and kind in ("join", "leave", "hold", "unhold", "mute", "unmute"):
        before = conf.participants.get(call_sid)
        label = str(event.get("ParticipantLabel") or "")
        seen = Participant(call_sid, label, present=kind != "leave",
                           hold=_true(event.get("Hold")), muted=_true(event.get("Muted")),
                           seq=int(_number(event.get("SequenceNumber"), 0)))
        # The later callback wins; at one sequence number a leave wins (a total order
        # over states, so which arrived first never matters). A label, once seen, stays.
        now = seen if before is None or _rank(seen) > _rank(before) else before
        now = replace(now, label=max(label, before.label if before else ""))
        conf = replace(conf, participants={**conf.participants, call_sid: now})
    return Room({**room.conferences, sid: conf})


def _rank(p: Participant) -> tuple[int, bool, bool, bool]:
    return (p.seq, not p.present, p.hold, p.muted)


def fold_all(events: Iterable[Mapping[str, Any]], room: Room | None = None) -> Room:
    out = room or Room()
    for event in events:
        out = fold(out, event)
    return out
