"""What the app asks of Twilio's REST API while routing: move a queued call to the agent
it was reserved for, and ring a caller back. The twilio library's client does the work;
``IVR_TWILIO_API_URL`` points it elsewhere (tests use a local stand-in for the API)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from ivr.errors import IVRError

log = logging.getLogger(__name__)


class TelephonyError(IVRError):
    """Twilio's REST API refused or could not be reached."""


class Telephony(Protocol):
    def redirect(self, call_sid: str, url: str) -> None:
        """Make a live call fetch new TwiML from ``url``."""
        ...

    def ring(self, to: str, from_: str, url: str, status_callback: str) -> str:
        """Place an outbound call that runs the TwiML at ``url``; returns its CallSid."""
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
                             http_client=TwilioHttpClient(timeout=self.timeout_s))
        if self.api_url:
            self.client.api.base_url = self.api_url.rstrip("/")

    def redirect(self, call_sid: str, url: str) -> None:
        try:
            self.client.calls(call_sid).update(url=url, method="POST")
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"redirect of {call_sid} failed: {exc}"[:300]) from exc

    def ring(self, to: str, from_: str, url: str, status_callback: str) -> str:
        try:
            call = self.client.calls.create(to=to, from_=from_, url=url, method="POST",
                                            status_callback=status_callback,
                                            status_callback_method="POST")
        except Exception as exc:  # TwilioException, and requests' connection errors
            raise TelephonyError(f"callback call failed: {exc}"[:300]) from exc
        return str(call.sid)


class NoTelephony:
    """Used when no Twilio account is configured: routing decisions are still made and
    shown, but nobody can be connected, and the logs say so."""

    def redirect(self, call_sid: str, url: str) -> None:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot connect the call to its "
                             "agent")

    def ring(self, to: str, from_: str, url: str, status_callback: str) -> str:
        raise TelephonyError("TWILIO_ACCOUNT_SID is not set: cannot ring the caller back")
