"""A caller that only follows TwiML: it drives the webhook app exactly as Twilio does.

``ivr call`` uses it against the app in-process, the tests use it both in-process
and against a real server on loopback. Requests are signed with the twilio
library's RequestValidator, so the signature check is exercised too.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol
from urllib.error import HTTPError

from twilio.request_validator import RequestValidator

#: Turns after which a call is cut off (a flow that never ends is a bug to report).
MAX_TURNS = 200
_DIGITS = re.compile(r"^[0-9*#]+$")


def sign(token: str, url: str, params: dict[str, str]) -> str:
    """The X-Twilio-Signature Twilio would send for this URL and form."""
    return RequestValidator(token).compute_signature(url, params)


class Transport(Protocol):
    """POSTs a signed form to the app; returns (status, body)."""

    base_url: str

    def post(self, path: str, params: dict[str, str]) -> tuple[int, str]: ...


@dataclass
class FlaskTransport:
    """Talks to a Flask app in this process (its test client; no socket)."""

    app: object
    token: str
    base_url: str = "http://localhost"

    def post(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        client = self.app.test_client()  # type: ignore[attr-defined]
        headers = {"X-Twilio-Signature": sign(self.token, self.base_url + path, params)}
        r = client.post(path, data=params, headers=headers)
        return r.status_code, r.get_data(as_text=True)


@dataclass
class HttpTransport:
    """Talks to a server over HTTP (stdlib only)."""

    base_url: str
    token: str
    timeout_s: float = 15.0

    def post(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        url = self.base_url.rstrip("/") + path
        data = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(url, data=data, method="POST", headers={
            "X-Twilio-Signature": sign(self.token, url, params),
            "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.status, resp.read().decode()
        except HTTPError as exc:
            return exc.code, exc.read().decode()


@dataclass
class ConsoleTelephony:
    """Plays Twilio's part for REST requests in ``ivr call``: a redirect of the caller's
    call is remembered and followed by the :class:`TwimlCaller`, as Twilio would."""

    redirects: dict[str, str] = field(default_factory=dict)
    rang: list[tuple[str, str]] = field(default_factory=list)

    def redirect(self, call_sid: str, url: str) -> None:
        self.redirects[call_sid] = url

    def ring(self, to: str, from_: str, url: str, status_callback: str,
             timeout_s: int | None = None) -> str:
        self.rang.append((to, url))
        return "CA" + "0" * 32

    # ``ivr call`` bridges by dial: a conference's participants are never changed
    def update_participant(self, conference_sid: str, participant: str,
                           **fields: Any) -> None:
        return None

    def add_participant(self, room: str, to: str, from_: str, label: str,
                        status_callback: str, timeout_s: int) -> None:
        self.rang.append((to, room))

    def remove_participant(self, conference_sid: str, participant: str) -> None:
        return None


@dataclass
class CallResult:
    """What happened on the call, from the caller's side."""

    call_sid: str
    heard: list[str] = field(default_factory=list)
    ended_by: str = ""  # enqueue, agent, dial, hangup, end_of_twiml, max_turns, http_<status>
    queue: str | None = None
    dialed: str | None = None
    agent: str | None = None
    turns: int = 0
    documents: list[str] = field(default_factory=list)


Answer = Callable[[list[str]], str | None]


class TwimlCaller:
    """Plays the caller: says or keys in answers from ``answer`` (None: silence).

    An answer of only keypad characters is sent as ``Digits``, anything else as a
    ``SpeechResult``; an empty answer is no input.
    """

    def __init__(self, transport: Transport, answer: Answer,
                 show: Callable[[str], None] = lambda line: None,
                 after_queue: str | None = None,
                 redirects: dict[str, str] | None = None,
                 agent_name: Callable[[str], str] = lambda contact: contact) -> None:
        self.transport = transport
        self.answer = answer
        self.show = show
        self.after_queue = after_queue  # how the agent leg ends (QueueResult/DialCallStatus)
        self.redirects = redirects if redirects is not None else {}  # REST redirects to follow
        self.agent_name = agent_name  # how an agent's contact is shown ('farid (+*****88)')

    def call(self, call_sid: str, caller: str, called: str) -> CallResult:
        result = CallResult(call_sid)
        base = {"CallSid": call_sid, "AccountSid": "AC" + "0" * 32, "From": caller,
                "To": called, "Direction": "inbound", "CallStatus": "in-progress"}
        path: str | None = "/voice/incoming"
        params: dict[str, str] = {}
        current = "/voice/incoming"
        while path is not None:
            if result.turns >= MAX_TURNS:
                result.ended_by = "max_turns"
                break
            result.turns += 1
            status, body = self.transport.post(path, {**base, **params})
            current = path
            if status != 200:
                result.ended_by = f"http_{status}"
                self.show(f"[the app answered HTTP {status}: {body.strip()[:200]}]")
                break
            result.documents.append(body)
            path, params = self._follow(body, current, result)
        self._hang_up(base, result)
        return result

    def _hang_up(self, base: dict[str, str], result: CallResult) -> None:
        """Send Twilio's final status callback when the call really ended."""
        if result.ended_by in ("hangup", "end_of_twiml"):
            self.transport.post("/voice/status", {**base, "CallStatus": "completed"})

    def _follow(self, body: str, current: str, result: CallResult
                ) -> tuple[str | None, dict[str, str]]:
        """Run one TwiML document; return the next request (path, form) or (None, {})."""
        root = ET.fromstring(body)
        for verb in root:
            tag = verb.tag
            if tag == "Say":
                self._hear(result, verb.text or "")
            elif tag == "Play":
                self._hear(result, f"[audio {verb.text}]")
            elif tag == "Gather":
                prompts = []
                for child in verb:
                    prompts.append(child.text or "" if child.tag == "Say" else
                                   f"[audio {child.text}]")
                    self._hear(result, prompts[-1])
                reply = self.answer(prompts)
                return _join(current, verb.get("action", current)), _input_form(reply)
            elif tag == "Record":
                reply = self.answer(["[recording after the beep]"])
                form = {"RecordingUrl": "https://api.twilio.com/fake/recording",
                        "RecordingDuration": str(len(reply or "") // 12 + 1)} if reply else {}
                return _join(current, verb.get("action", current)), form
            elif tag == "Redirect":
                return _join(current, verb.text or current), {}
            elif tag == "Enqueue":
                result.queue = (verb.text or "").strip()
                self.show(f"[queued in '{result.queue}']")
                redirect = self.redirects.pop(result.call_sid, None)
                if redirect is not None:  # an agent was reserved: Twilio fetches the new URL
                    return _join(current, redirect), {}
                if self.after_queue is not None and verb.get("action"):
                    outcome, self.after_queue = self.after_queue, None
                    return _join(current, verb.get("action", current)), {"QueueResult": outcome}
                result.ended_by = "enqueue"
                return None, {}
            elif tag == "Dial":
                return self._dial(verb, current, result)
            elif tag == "Hangup":
                self.show("[call ended]")
                result.ended_by = "hangup"
                return None, {}
        result.ended_by = "end_of_twiml"
        return None, {}

    def _dial(self, verb: ET.Element, current: str, result: CallResult
              ) -> tuple[str | None, dict[str, str]]:
        """A transfer out ends the console call; a Dial to an agent with a whisper URL is
        answered by the agent: the whisper is heard on their side, then the talk."""
        leg = next(iter(verb), None)
        target = ((leg.text if leg is not None else verb.text) or "").strip()
        whisper = leg.get("url") if leg is not None else None
        if whisper is None:
            result.dialed = target
            self.show(f"[transferred to {target}]")
            result.ended_by = "dial"
            return None, {}
        result.agent = target
        who = self.agent_name(f"client:{target}" if leg is not None and leg.tag == "Client"
                              else target)
        self.show(f"[ringing agent {who}]")
        status, body = self.transport.post(_join(current, whisper), {
            "CallSid": "CA" + "f" * 32, "From": "", "To": target})
        if status == 200:
            for say in ET.fromstring(body).iter("Say"):
                self.show(f"[agent hears] {say.text}")
        self.show(f"[caller and agent {who} are talking]")
        if self.after_queue is None or not verb.get("action"):
            result.ended_by = "agent"
            return None, {}
        self.after_queue = None
        return _join(current, verb.get("action", current)), {"DialCallStatus": "completed"}

    def _hear(self, result: CallResult, text: str) -> None:
        result.heard.append(text)
        self.show(f"IVR: {text}")


def _input_form(reply: str | None) -> dict[str, str]:
    if reply is None or not reply.strip():
        return {}
    reply = reply.strip()
    if _DIGITS.match(reply):
        return {"Digits": reply}
    return {"SpeechResult": reply, "Confidence": "0.92"}


def _join(current: str, target: str) -> str:
    """Resolve a TwiML URL against the URL just requested, keeping only path and query."""
    joined = urllib.parse.urljoin("http://app" + current, target)
    parts = urllib.parse.urlsplit(joined)
    return parts.path + (f"?{parts.query}" if parts.query else "")
