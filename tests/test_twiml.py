"""TwiML rendering: a document reused for the same actions is the one made afresh."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from ivr.engine.actions import Enqueue, Gather, Hangup, Play, RouteRequest, Say
from ivr.twiml import Links, _render, _render_cached, conference_agent, render, whisper

text = st.text(min_size=1, max_size=40)
say = st.builds(Say, text=text, voice=st.sampled_from(["Polly.Joanna", "alice"]),
                locale=st.sampled_from(["en-US", "es-US"]))
gather = st.builds(Gather, prompts=st.tuples(say), input=st.sampled_from([("dtmf",), ("speech", "dtmf")]),
                   timeout_seconds=st.integers(1, 10), locale=st.just("en-US"),
                   num_digits=st.one_of(st.none(), st.integers(1, 4)),
                   hints=st.lists(text, max_size=3).map(tuple))
actions = st.lists(st.one_of(say, gather, st.builds(Play, url=st.just("https://x/y.mp3")),
                             st.just(Hangup())), min_size=1, max_size=4)


@given(actions, st.integers(0, 50))
def test_a_reused_document_is_the_one_made_afresh(acts, turn):
    links = Links(turn=turn)
    first, again = render(acts, links), render(list(acts), links)
    assert first == again == _render(acts, links)
    ET.fromstring(first)  # well-formed XML whatever the text
    assert render(acts, Links(turn=turn + 1)) != first or "step?" not in first


def test_same_prompts_are_rendered_once_and_route_requests_every_time():
    _render_cached.cache_clear()
    prompt = [Say("Welcome to the bank.", "alice", "en-US")]
    render(prompt, Links(turn=1))
    render(prompt, Links(turn=1))
    assert _render_cached.cache_info().hits == 1
    queued = [Enqueue(RouteRequest(queue="cards", skills={"cards": 3}, language="en",
                                   priority=1))]  # holds dicts: not hashable
    doc = render(queued, Links(turn=2))
    assert ET.fromstring(doc).find("Enqueue").text == "cards"
    assert _render_cached.cache_info().currsize == 1


@given(text)
def test_a_whisper_from_any_record_is_xml_under_both_bridges(name):
    """The whisper reads the caller's record (a CSV): whatever it holds, the agent's
    leg gets a document Twilio accepts, with the dial bridge and the conference one."""
    for doc in (whisper(f"{name}, gold customer."),
                conference_agent(f"{name}, gold customer.", "ivr-room", "agent-1", "/s")):
        assert ET.fromstring(doc).find("Say").text.endswith("gold customer.")
