"""Renders engine actions as TwiML with the twilio library's ``VoiceResponse``.

URLs come from a :class:`Links` object, so every URL Twilio needs next (Gather
``action``, Record ``action``, Enqueue ``waitUrl``, Dial ``action``) is in the
TwiML itself and carries the turn that it answers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Sequence
from urllib.parse import urlencode

from twilio.twiml.voice_response import Gather as TwiMLGather
from twilio.twiml.voice_response import VoiceResponse

from ivr.engine.actions import Action, Dial, Enqueue, Gather, Hangup, Play, Record, Say

#: Public hold music Twilio itself offers; override with ``IVR_HOLD_MUSIC_URL``.
DEFAULT_HOLD_MUSIC = "http://com.twilio.sounds.music.s3.amazonaws.com/MARKOVICHAMP-Borghestral.mp3"


@dataclass(frozen=True)
class Links:
    """Builds the webhook URLs of one call's next turn (relative: Twilio resolves them
    against the URL it just requested, which keeps them right behind a proxy)."""

    turn: int
    prefix: str = "/voice"

    def step(self, event: str) -> str:
        return f"{self.prefix}/step?{urlencode({'turn': self.turn, 'ev': event})}"

    def wait(self, queue: str) -> str:
        return f"{self.prefix}/wait?{urlencode({'queue': queue})}"


#: Characters XML 1.0 forbids: a prompt filled from data (a lookup's CSV, a caller's
#: record) that held one would make a document Twilio rejects, and the caller hear an
#: application error.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _say(verb: VoiceResponse | TwiMLGather, say: Say) -> None:
    """One ``<Say>`` per language segment, each with its own voice and language."""
    for part in say.parts or (say,):
        verb.say(_NOT_XML.sub("", part.text), voice=part.voice, language=part.locale)


#: Distinct documents kept by :func:`render` (an IVR says the same prompts to most callers).
RENDERED_CACHE = 4096


def render(actions: Sequence[Action], links: Links) -> str:
    """The TwiML document for a list of actions. Actions and links are immutable, so a
    document already made for the same ones is reused: building it with the twilio
    library and ElementTree was ~8 % of a webhook's CPU (``scripts/bench_live.py``
    profiled with py-spy); actions holding a dict (a route request) are not hashable
    and are rendered each time."""
    key = tuple(actions)
    try:
        hash(key)
    except TypeError:
        return _render(key, links)
    return _render_cached(key, links)


@functools.lru_cache(maxsize=RENDERED_CACHE)
def _render_cached(actions: tuple[Action, ...], links: Links) -> str:
    return _render(actions, links)


def _render(actions: Sequence[Action], links: Links) -> str:
    response = VoiceResponse()
    for action in actions:
        if isinstance(action, Say):
            _say(response, action)
        elif isinstance(action, Play):
            response.play(action.url, loop=action.loop)
        elif isinstance(action, Gather):
            _gather(response, action, links)
        elif isinstance(action, Record):
            response.record(action=links.step("record"), method="POST",
                            max_length=action.max_length_seconds, play_beep=True,
                            finish_on_key="#", timeout=5)
            # Twilio skips the action when nothing was recorded; this carries on instead.
            response.redirect(links.step("record"), method="POST")
        elif isinstance(action, Enqueue):
            response.enqueue(action.request.queue, action=links.step("queue"), method="POST",
                             wait_url=links.wait(action.request.queue), wait_url_method="POST")
        elif isinstance(action, Dial):
            _dial(response, action, links)
        elif isinstance(action, Hangup):
            response.hangup()
    return str(response)


def _gather(response: VoiceResponse, action: Gather, links: Links) -> None:
    options: dict[str, object] = dict(
        input=" ".join(action.input), action=links.step("gather"), method="POST",
        timeout=action.timeout_seconds, language=action.locale, action_on_empty_result=True)
    if "speech" in action.input:
        options["speech_timeout"] = "auto"
        if action.hints:
            options["hints"] = _NOT_XML.sub("", ", ".join(h.replace(",", " ")
                                                         for h in action.hints))
    if action.num_digits is not None:
        options["num_digits"] = action.num_digits
    if action.finish_on_key:
        options["finish_on_key"] = action.finish_on_key
    gather: TwiMLGather = response.gather(**options)
    for prompt in action.prompts:
        if isinstance(prompt, Say):
            _say(gather, prompt)
        else:
            gather.play(prompt.url, loop=prompt.loop)
    # If Twilio ever falls through the Gather (no input and no action request), ask again.
    response.redirect(links.step("noinput"), method="POST")


def _dial(response: VoiceResponse, action: Dial, links: Links) -> None:
    dial = response.dial(action=links.step("dial"), method="POST",
                         timeout=action.timeout_seconds)
    if action.number.startswith("sip:"):
        dial.sip(action.number)
    elif action.number.startswith("client:"):
        dial.client(action.number.removeprefix("client:"))
    else:
        dial.number(action.number)


def hold(position: int | None, wait_phrase: str | None, hold_music: str,
         callback_url: str | None, locale: str = "en-US") -> str:
    """TwiML for the queue's wait URL: the caller's place and an honest wait estimate,
    a callback offer when the wait is long, then a stretch of music.

    Twilio requests the wait URL again when this document ends, so the announcement
    comes back about once per music loop.
    """
    response = VoiceResponse()
    parts = ["Thank you for waiting."]
    if position is not None and position > 0:
        parts.append("You are next in line." if position == 1 else
                     f"You are number {position} in line.")
    if wait_phrase is not None:
        parts.append(f"Your expected wait is {wait_phrase}.")
    response.say(" ".join(parts), language=locale)
    if callback_url is not None:
        gather = response.gather(input="dtmf", num_digits=1, timeout=3, action=callback_url,
                                 method="POST")
        gather.say("To hang up and get a call back without losing your place, press 1.",
                   language=locale)
    response.play(hold_music)
    return str(response)


def callback_booked(locale: str = "en-US") -> str:
    """Answer to pressing 1 for a callback: confirm, then leave the queue."""
    response = VoiceResponse()
    response.say("Thank you. We will call you back at this number when an agent is ready. "
                 "Goodbye.", language=locale)
    response.leave()
    return str(response)


def connect_agent(contact: str, whisper_url: str, done_url: str, timeout_s: int,
                  locale: str = "en-US") -> str:
    """Dial the reserved agent; the whisper plays to the agent before the caller is
    bridged, so the agent knows who is calling and why."""
    response = VoiceResponse()
    response.say("Thank you for holding. Connecting you now.", language=locale)
    dial = response.dial(action=done_url, method="POST", timeout=timeout_s)
    if contact.startswith("client:"):
        dial.client(contact.removeprefix("client:"), url=whisper_url, method="POST")
    elif contact.startswith("sip:"):
        dial.sip(contact, url=whisper_url, method="POST")
    else:
        dial.number(contact, url=whisper_url, method="POST")
    return str(response)


#: The conference events a call's room reports to ``/voice/conference``.
ROOM_EVENTS = "start end join leave hold"


def conference_caller(room: str, done_url: str, wait_url: str, status_url: str,
                      locale: str = "en-US") -> str:
    """The caller's leg into the call's conference room (``IVR_AGENT_BRIDGE=conference``).
    The caller waits with ``wait_url``'s music until an agent joins (the agent starts the
    conference), and the room ends when the caller leaves; the Dial's action then runs as
    the end of the agent leg does with the dial bridge."""
    response = VoiceResponse()
    response.say("Thank you for holding. Connecting you now.", language=locale)
    dial = response.dial(action=done_url, method="POST")
    dial.conference(room, start_conference_on_enter=False, end_conference_on_exit=True,
                    beep=False, wait_url=wait_url, wait_method="POST",
                    participant_label="caller", status_callback=status_url,
                    status_callback_method="POST", status_callback_event=ROOM_EVENTS)
    return str(response)


def conference_agent(text: str, room: str, label: str, status_url: str) -> str:
    """The agent's leg, answered: the whisper, then the call's room. The agent starts the
    conference; their leaving ends it (the caller moves on to what follows the talk),
    unless they handed the call over to a consulted agent first."""
    response = VoiceResponse()
    response.say(_NOT_XML.sub("", text))
    dial = response.dial()
    dial.conference(room, start_conference_on_enter=True, end_conference_on_exit=True,
                    beep=False, participant_label=label, status_callback=status_url,
                    status_callback_method="POST", status_callback_event=ROOM_EVENTS)
    return str(response)


def conference_wait(wait_phrase: str | None, hold_music: str, locale: str = "en-US") -> str:
    """The caller's wait in the room before the agent joins (a conference ``waitUrl``
    takes only Say, Play, Pause and Redirect, so no callback offer here)."""
    response = VoiceResponse()
    text = "Thank you for waiting. An agent will be with you shortly."
    if wait_phrase is not None:
        text += f" Your expected wait is {wait_phrase}."
    response.say(text, language=locale)
    response.play(hold_music)
    return str(response)


def on_hold_music(hold_music: str, locale: str = "en-US") -> str:
    """The ``holdUrl`` of a held caller: a word, then music until resumed."""
    response = VoiceResponse()
    response.say("Please hold.", language=locale)
    response.play(hold_music, loop=0)
    return str(response)


def whisper(text: str) -> str:
    """What the agent hears before the caller is bridged (from the caller's record, so
    characters XML forbids are dropped, as in the conference bridge's whisper)."""
    response = VoiceResponse()
    response.say(_NOT_XML.sub("", text))
    return str(response)


def requeue(queue: str, links: Links, locale: str = "en-US") -> str:
    """Back to the queue after an agent did not answer: no one is lost."""
    response = VoiceResponse()
    response.say("Sorry for the wait. Finding the next available agent.", language=locale)
    response.enqueue(queue, action=links.step("queue"), method="POST",
                     wait_url=links.wait(queue), wait_url_method="POST")
    return str(response)


def hang_up(text: str | None = None) -> str:
    response = VoiceResponse()
    if text:
        response.say(text)
    response.hangup()
    return str(response)


def empty() -> str:
    """A document that does nothing (the call has already moved on)."""
    return str(VoiceResponse())


def apology(language: str = "en-US") -> str:
    """TwiML for a call the app cannot place in its flow: apologise and hang up."""
    response = VoiceResponse()
    response.say("We're sorry, we could not complete your call. Please call again.",
                 language=language)
    response.hangup()
    return str(response)


def safe_queue(text: str, queue: str, locale: str = "en-US") -> str:
    """The last-resort safe path: an apology, then the queue a person answers. Its end
    comes back to ``/voice/queue-end``, which needs no stored state."""
    response = VoiceResponse()
    response.say(text, language=locale)
    response.enqueue(queue, action="/voice/queue-end", method="POST",
                     wait_url=f"/voice/wait?{urlencode({'queue': queue})}",
                     wait_url_method="POST")
    return str(response)


def fallback_dial(text: str, number: str | None, locale: str = "en-US") -> str:
    """When even the queue failed: dial the fallback number, else apologise and hang up."""
    response = VoiceResponse()
    response.say(text, language=locale)
    if number:
        response.dial(number)
    response.hangup()
    return str(response)
