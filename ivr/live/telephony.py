"""What the app asks of Twilio's REST API while routing: move a queued call to the agent
it was reserved for, ring a caller back, and with the conference bridge dial an agent
leg, hold or resume a participant, add a consulted agent or take one out. The twilio
library's client does the work
(on a urllib3 pool, :mod:`ivr.live.rest_http`);
``IVR_TWILIO_API_URL`` points it elsewhere (tests use a local stand-in for the API)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol

from twilio.rest import Client

from ivr.errors import IVRError
from ivr.live.rest_http import PooledHttpClient

log = logging.getLogger(__name__)


class TelephonyError(IVRError):
    """Twilio's REST API refused or could not be reached."""


class Telephony(Protocol):
    def redirect(self, call_sid: str, url: str) -> None:
        """Make a live call fetch new TwiML from ``url``."""
        ...

    def ring(self, to: str, from_: str, url: str, status_callback: str,
             timeout_s: int | None = None) -> str:
        """Place an outbound call that runs the TwiML at ``url``; returns its CallSid."""
        ...

    def update_participant(self, conference_sid: str, participant: str,
                           **fields: Any) -> None:
        """Change a conference participant (by CallSid or label): hold, endConferenceOnExit."""
        ...

    def add_participant(self, room: str, to: str, from_: str, label: str,
                        status_callback: str, timeout_s: int) -> None:
        """Dial ``to`` into the conference named ``room`` (created if it is not running)."""
        ...

    def remove_participant(self, conference_sid: str, participant: str) -> None:
        """Take a participant (by CallSid or label) out of the conference: their leg ends."""
        ...


@dataclass
class TwilioTelephony:
    """The twilio library's REST client."""

    account_sid: str
    auth_token: str
    api_url: str | None = None
    timeout_s: float = 3.0  # per request: a hung API never holds a sender for long

    def __post_init__(self) -> None:
        self.client = Client(self.account_sid, self.auth_token,
                             http_client=PooledHttpClient(timeout=self.timeout_s))
        if self.api_url:
            self.client.api.base_url = self.api_url.rstrip("/")

    def redirect(self, call_sid: str, url: str) -> None:
        try:
            self.client.calls(call_sid).update(url=url, method="POST")
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"redirect of {call_sid} failed: {exc}"[:300]) from exc

    def ring(self, to: str, from_: str, url: str, status_callback: str,
             timeout_s: int | None = None) -> str:
        extra: dict[str, Any] = {} if timeout_s is None else {"timeout": timeout_s}
        try:
            call = self.client.calls.create(to=to, from_=from_, url=url, method="POST",
                                            status_callback=status_callback,
                                            status_callback_method="POST", **extra)
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"outbound call failed: {exc}"[:300]) from exc
        return str(call.sid)

    def update_participant(self, conference_sid: str, participant: str,
                           **fields: Any) -> None:
        try:
            self.client.conferences(conference_sid).participants(participant).update(**fields)
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"update of participant {participant} failed: {exc}"[:300]) \
                from exc

    def add_participant(self, room: str, to: str, from_: str, label: str,
                        status_callback: str, timeout_s: int) -> None:
        try:
            self.client.conferences(room).participants.create(
                from_=from_, to=to, label=label, beep="false", early_media=True,
                start_conference_on_enter=True, end_conference_on_exit=False,
                timeout=timeout_s, status_callback=status_callback,
                status_callback_method="POST",
                status_callback_event=["initiated", "ringing", "answered", "completed"])
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"adding {label} to the conference failed: {exc}"[:300]) \
                from exc

    def remove_participant(self, conference_sid: str, participant: str) -> None:
        try:
            self.client.conferences(conference_sid).participants(participant).delete()
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"removing {participant} failed: {exc}"[:300]) from exc


class NoTelephony:
    """Used when no Twilio account is configured: routing decisions are still made and
    shown, but nobody can be connected, and the logs say so."""

    configured = False  # the outbox records nothing for it (nothing could be sent)

    def redirect(self, call_sid: str, url: str) -> None:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot connect the call to its "
                             "agent")

    def ring(self, to: str, from_: str, url: str, status_callback: str,
             timeout_s: int | None = None) -> str:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot place the call")

    def update_participant(self, conference_sid: str, participant: str,
                           **fields: Any) -> None:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot change the conference")

    def add_participant(self, room: str, to: str, from_: str, label: str,
                        status_callback: str, timeout_s: int) -> None:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot add to the conference")

    def remove_participant(self, conference_sid: str, participant: str) -> None:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot change the conference")
