"""The pure engine through whole calls of every example flow: keys, speech, silence,
retries, the escape to a human, hours, incidents, look-ups, sub-flows, surveys."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from conftest import CLOSED, FLOWS, KNOWN_CALLER, OPEN, UNKNOWN_CALLER

from ivr.engine import (
    CallEnded,
    CallerInput,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    LegEnded,
    Record,
    RecordingDone,
    Say,
    Session,
    start,
    step,
)
from ivr.flows import load_flow

BANK = load_flow(FLOWS / "bank.yaml")
QUICK = load_flow(FLOWS / "quickstart.yaml")


def said(actions) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Say):
            out.append(a.text)
        elif isinstance(a, Gather):
            out += [p.text for p in a.prompts if isinstance(p, Say)]
    return out


def run(flow, events, caller=UNKNOWN_CALLER, now=OPEN):
    """Start a call and apply events; returns (actions of every turn, final session)."""
    actions, session = start(flow, "CA" + "0" * 32, caller, "+14155550100", now)
    turns = [actions]
    for event in events:
        actions, session = step(flow, session, event, now)
        turns.append(actions)
    return turns, session


def keys(d: str) -> CallerInput:
    return CallerInput(digits=d)


def speech(text: str, confidence: float = 0.9) -> CallerInput:
    return CallerInput(speech=text, confidence=confidence)


SILENCE = CallerInput()


# ---------------------------------------------------------------- quickstart


def test_quickstart_dtmf_path():
    turns, s = run(QUICK, [keys("1")])
    assert said(turns[0]) == ["Thanks for calling. This call may be recorded for quality.",
                              "Briefly, how can we help? For sales press 1, for support press 2."]
    assert isinstance(turns[0][-1], Gather) and turns[0][-1].num_digits == 1
    (announce, enqueue) = turns[1]
    assert announce.text == "Connecting you to our sales team."
    assert isinstance(enqueue, Enqueue)
    assert enqueue.request.queue == "sales" and enqueue.request.skills == {"sales": 2}
    assert s.status == "queued" and s.outcome == "routed" and s.data["intent"] == "sales"
    assert s.turn == 1


def test_quickstart_speech_path():
    _, s = run(QUICK, [speech("my internet is not working, I keep getting an error")])
    assert s.route["queue"] == "support" and s.data["intent"] == "support"
    assert s.data["nlu"]["ranked"][0]["intent"] == "support"


def test_quickstart_no_input_then_retries_exhausted():
    turns, s = run(QUICK, [SILENCE, SILENCE, SILENCE])
    assert said(turns[1]) == ["Briefly, how can we help? For sales press 1, for support press 2."]
    assert said(turns[2]) == said(turns[1])
    assert s.route["queue"] == "support"  # no_match target after 3 tries
    assert [t["decision"] for t in s.trail if t["node"] == "menu"] == [
        "no_input: try 2 of 3", "no_input: try 3 of 3", "no_input: tries exhausted -> to_support"]


def test_quickstart_no_match_reprompt_differs_from_prompt():
    turns, s = run(QUICK, [speech("purple elephants dancing"), keys("2")])
    assert said(turns[1]) == ["Sorry, I didn't catch that. Say sales or support, or press 1 or 2."]
    assert s.route["queue"] == "support" and s.attempts == 0


@pytest.mark.parametrize("event", [keys("0"), speech("can I talk to a real person please"),
                                   speech("AGENT!"), speech("representative")])
def test_escape_to_a_human_from_any_ask(event):
    _, s = run(QUICK, [event])
    assert s.route["queue"] == "general"  # the built-in human route
    assert s.data["escaped_to_agent"] is True


# ---------------------------------------------------------------- bank


def test_bank_known_caller_speech_to_billing_with_context():
    turns, s = run(BANK, [speech("I have a question about my bill")], caller=KNOWN_CALLER)
    assert said(turns[0])[:2] == ["Thank you for calling Acme Bank. Gracias por llamar a Acme Bank.",
                                  "Welcome back, James."]
    assert s.route["queue"] == "billing" and s.route["skills"] == {"billing": 3}
    ctx = s.route["context"]
    assert ctx["customer"]["account_number"] == "23456789"  # nobody repeats their details
    assert ctx["intent"] == "billing" and ctx["identified_by"] == "caller_id"
    assert "dob" not in ctx["customer"]  # the flow marks it private


def test_bank_vip_gets_priority_and_spanish_from_profile():
    _, s = run(BANK, [keys("1")], caller="+14155550101")  # Maria: platinum, Spanish
    assert s.data["language"] == "es"
    assert s.route["priority"] == 4 and s.route["language"] == "es"


def test_bank_spanish_caller_hears_spanish():
    turns, s = run(BANK, [keys("2"), keys("99999999")])
    assert turns[1][0].prompts[0].text.startswith("Por favor marque su número de cuenta")
    assert turns[1][0].locale == "es-US"


def test_bank_unknown_caller_verifies_through_subflow_then_self_serves_balance():
    events = [keys("1"), keys("23456789#"), keys("11021990"), speech("what's my balance"),
              speech("no thanks"), keys("5"), keys("2")]
    turns, s = run(BANK, events)
    assert s.data["verified"] is True
    assert "Your available balance is 310.55 dollars." in said(turns[4])
    assert s.data["survey"] == {"csat": 5, "ces": 2}
    assert s.status == "ended" and s.outcome == "completed_in_ivr" and s.data["self_served"]
    assert isinstance(turns[-1][-1], Hangup)


def test_bank_wrong_date_of_birth_is_not_verified_and_balance_goes_to_an_agent():
    _, s = run(BANK, [keys("1"), keys("23456789"), keys("01011990"), speech("check my balance")])
    assert s.data["verified"] is False
    assert s.route["queue"] == "billing"


def test_bank_collect_validation_and_tries():
    turns, s = run(BANK, [keys("1"), keys("1234"), keys("abcdefgh"[:0] or "12"),
                          keys("123")])
    assert said(turns[2]) == ["Sorry, that didn't look like an account number. Please enter "
                              "the eight digits again."]
    assert s.data["verified"] is False  # tries exhausted -> unverified -> main menu
    assert s.node == "main_menu"


def test_bank_invalid_date_is_rejected():
    _, s = run(BANK, [keys("1"), keys("23456789"), keys("13451990")])
    assert s.node == "verify/ask_dob" and s.attempts == 1


def test_bank_spoken_account_number():
    _, s = run(BANK, [keys("1"), speech("two three four five six seven eight nine")])
    assert s.data["account_number"] == "23456789" and s.node == "verify/ask_dob"


def test_bank_card_stolen_by_speech_goes_to_fraud_with_top_priority():
    _, s = run(BANK, [speech("someone stole my wallet")], caller=KNOWN_CALLER)
    assert s.route["queue"] == "fraud" and s.route["priority"] == 10
    assert s.data["urgent"] is True


def test_bank_closed_offers_voicemail_and_lost_card_line():
    turns, s = run(BANK, [keys("1"), keys("2"), RecordingDone("https://x/rec", 14)], now=CLOSED)
    assert any("Our agents are available" in t for t in said(turns[1]))
    assert isinstance(turns[2][-1], Record)
    assert s.data["voicemail"] == {"mailbox": "after_hours", "url": "https://x/rec",
                                   "duration_seconds": 14}
    assert s.outcome == "voicemail" and s.status == "ended"
    _, s = run(BANK, [keys("1"), keys("1")], now=CLOSED)
    assert s.status == "transferred"
    turns, s = run(BANK, [keys("1"), keys("1"), LegEnded("no-answer"), RecordingDone(None, 0)],
                   now=CLOSED)
    assert isinstance(turns[2][-1], Dial) and isinstance(turns[3][-1], Record)


def test_bank_holiday_is_closed():
    thanksgiving = dt.datetime(2026, 11, 26, 11, 0, tzinfo=OPEN.tzinfo)
    _, s = run(BANK, [keys("1")], now=thanksgiving)
    assert s.node == "closed_menu"


def test_bank_outage_announcement(tmp_path):
    for p in FLOWS.glob("*.yaml"):
        (tmp_path / p.name).write_text(p.read_text())
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "customers.csv").write_text((FLOWS / "data/customers.csv").read_text())
    text = (tmp_path / "bank.yaml").read_text()
    (tmp_path / "bank.yaml").write_text(text.replace("    active: false", "    active: true", 1))
    turns, _ = run(load_flow(tmp_path / "bank.yaml"), [], caller=KNOWN_CALLER)
    assert "Some card payments are being declined right now." in said(turns[0])[1]


def test_post_call_survey_after_agent_and_call_end():
    turns, s = run(BANK, [keys("2"), LegEnded("bridged"), keys("4"), speech("seven")],
                   caller=KNOWN_CALLER)
    assert s.data["survey"] == {"csat": 4, "ces": 7}
    assert s.status == "ended"
    _, s = run(BANK, [keys("2"), LegEnded("hangup")], caller=KNOWN_CALLER)
    assert s.outcome == "abandoned_in_queue"


def test_survey_skips_a_question_after_two_bad_answers():
    _, s = run(BANK, [keys("2"), LegEnded("bridged"), keys("9"), keys("8"), keys("3")],
               caller=KNOWN_CALLER)
    assert s.data["survey"] == {"ces": 3}


def test_caller_hangs_up_in_the_ivr():
    _, s = run(QUICK, [CallEnded("completed")])
    assert s.status == "ended" and s.outcome == "abandoned_in_ivr"
    actions, s2 = step(QUICK, s, keys("1"), OPEN)
    assert actions == [Hangup()] and s2.status == "ended"


def test_session_round_trips_through_json():
    _, s = run(BANK, [keys("1"), keys("23456789")])
    assert Session.from_json(s.to_json()) == s


def test_unknown_node_in_session_takes_the_safe_path():
    _, s = run(QUICK, [])
    broken = s.model_copy(update={"node": "deleted_node"})
    actions, s2 = step(QUICK, broken, keys("1"), OPEN)
    assert actions[0].text.startswith("We're sorry, something went wrong")
    assert actions[1].request.queue == "general" and s2.outcome == "error"


def test_engine_imports_neither_flask_nor_simpy_nor_the_clock():
    for path in (Path(__file__).parent.parent / "ivr" / "engine").glob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                 for a in n.names} | {n.module for n in ast.walk(tree)
                                      if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m.split(".")[0] in ("flask", "simpy", "time", "random") for m in names), \
            (path, names)
        assert "now()" not in path.read_text() and "utcnow" not in path.read_text()


def test_sentiment_is_kept_over_the_call_and_raises_priority():
    _, s = run(BANK, [speech("this is the third time I've called about a charge on my bill, "
                             "it's ridiculous")], caller=KNOWN_CALLER)
    assert s.route["queue"] == "billing"
    assert s.data["sentiment"]["repeat_caller"] is True and s.data["sentiment"]["frustrated"]
    assert s.route["priority"] == 1 + 2  # the escalate rule of route_billing
    calm_then_angry = [keys("1"), keys("23456789"), keys("11021990"),
                       speech("this is absolutely unacceptable, I'm furious"), keys("1")]
    _, s = run(BANK, calm_then_angry)
    assert s.data["sentiment"]["angry"] is True  # heard at the menu, kept to the route
    assert s.route["context"]["sentiment"]["angry"] is True


def test_unsure_answer_offers_the_two_likeliest_intents():
    turns, s = run(BANK, [speech("something about money"), keys("2"), keys("23456789"),
                          keys("11021990")], caller=KNOWN_CALLER)
    (gather,) = turns[1]
    assert gather.prompts[0].text == ("Sorry, is this about a bill or a charge, or your "
                                      "balance? Press 1 for a bill or a charge, or 2 for your "
                                      "balance.")
    assert s.data["intent"] == "balance" and "_offered" not in s.data
    assert "Your available balance is 310.55 dollars." in said(turns[4])  # once verified
    turns, s = run(BANK, [speech("something about money"), speech("my bill please")],
                   caller=KNOWN_CALLER)
    assert s.route["queue"] == "billing"
    _, s = run(BANK, [speech("something about money"), speech("purple elephants")],
               caller=KNOWN_CALLER)
    assert s.node == "main_menu" and s.attempts == 1  # neither: an ordinary retry


def test_unsure_answer_can_go_straight_to_a_human(write_flow):
    flow = load_flow(write_flow(QUICK.path.read_text().replace(
        "    no_match: to_support", "    no_match: to_support\n    when_unsure: agent")))
    # A garbled line: Twilio's own speech confidence is low, so ours is too.
    _, s = run(flow, [speech("sales support", confidence=0.1)])
    assert 0.15 <= s.data["nlu"]["ranked"][0]["confidence"] < 0.5
    assert s.route["queue"] == "general"
    _, s = run(QUICK, [speech("sales support", confidence=0.1)])  # default: ask again
    assert s.node == "menu" and s.attempts == 1


def test_caller_id_alone_never_hears_account_data_and_agents_are_told_the_trust_level():
    turns, s = run(BANK, [speech("what's my balance")], caller=KNOWN_CALLER)
    assert not any("balance is" in line for turn in turns for line in said(turn))
    assert "account number" in turns[-1][-1].prompts[0].text  # the knowledge check first
    turns, s = run(BANK, [speech("what's my balance"), keys("23456789"), keys("01011990")],
                   caller=KNOWN_CALLER)  # a wrong date of birth: a person, not the balance
    assert not any("balance is" in line for turn in turns for line in said(turn))
    assert s.route["queue"] == "billing" and s.route["context"]["trust"] == "recognised"
    _, s = run(BANK, [speech("I have a question about my bill")], caller=KNOWN_CALLER)
    assert s.route["context"]["trust"] == "recognised"
    _, s = run(BANK, [keys("1"), keys("23456789"), keys("11021990"), keys("1")])
    assert s.route["context"]["trust"] == "verified"
