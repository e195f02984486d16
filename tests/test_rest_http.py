"""The twilio library's requests on the urllib3 pool (ivr.live.rest_http): the same
requests as the library's own client sends, proxies and failures as requests has them."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs

import pytest
from fake_twilio import FakeTwilioAPI
from twilio.rest import Client

from ivr.live.rest_http import PooledHttpClient
from ivr.live.telephony import TelephonyError, TwilioTelephony

ACCOUNT, TOKEN = "AC" + "1" * 32, "t" * 32


def test_list_values_repeat_their_key_and_auth_is_basic():
    with FakeTwilioAPI() as api:
        phone = TwilioTelephony(ACCOUNT, TOKEN, api.url)
        phone.add_participant("ivr-room", "client:bob", "+14155550100", "consult",
                              "https://ivr.example.com/voice/room", 20)
        (req,) = api.requests
    assert req.path == f"/2010-04-01/Accounts/{ACCOUNT}/Conferences/ivr-room/Participants.json"
    form = parse_qs(req.body)
    assert form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert form["To"] == ["client:bob"] and form["Timeout"] == ["20"]
    assert base64.b64decode(req.authorization.removeprefix("Basic ")).decode() == \
        f"{ACCOUNT}:{TOKEN}"


def test_a_proxy_from_the_environment_carries_the_request(monkeypatch):
    with FakeTwilioAPI() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        phone = TwilioTelephony(ACCOUNT, TOKEN, "http://api.twilio.invalid")
        phone.redirect("CA" + "2" * 32, "https://ivr.example.com/voice/connect")
        (req,) = proxy.requests
    # A proxy is asked for the absolute URL.
    assert req.path.startswith("http://api.twilio.invalid/2010-04-01/Accounts/")


def test_no_proxy_goes_direct_and_an_unreachable_api_is_a_telephony_error(monkeypatch):
    with FakeTwilioAPI() as proxy:
        monkeypatch.setenv("http_proxy", proxy.url)
        monkeypatch.setenv("no_proxy", "api.twilio.invalid")
        phone = TwilioTelephony(ACCOUNT, TOKEN, "http://api.twilio.invalid", timeout_s=1)
        with pytest.raises(TelephonyError, match="redirect of CA"):
            phone.redirect("CA" + "2" * 32, "https://ivr.example.com/voice/connect")
        assert proxy.requests == []


def test_twilio_errors_come_back_as_the_library_raises_them():
    with FakeTwilioAPI(fault=404) as api:
        client = Client(ACCOUNT, TOKEN, http_client=PooledHttpClient(timeout=3))
        client.api.base_url = api.url
        with pytest.raises(Exception, match="fault injected"):
            client.calls("CA" + "3" * 32).update(url="https://x/y", method="POST")
