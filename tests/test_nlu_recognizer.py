"""Intent recognition trained from flow examples: accuracy, no-match, robustness, caching."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.nlu import (
    DEFAULT_THRESHOLD,
    IntentScore,
    NLUError,
    build_recognizer,
    build_recognizer_from_csv,
)
from ivr.nlu import cache as nlu_cache
from ivr.nlu.classifier import LinearRecognizer
from ivr.nlu.data import examples_from_rows, read_labelled_csv

FIXTURES = Path(__file__).parent / "fixtures" / "nlu"
FLOW = yaml.safe_load((FIXTURES / "flow_intents.yaml").read_text(encoding="utf-8"))["nodes"]


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("IVR_NLU_BACKEND", raising=False)  # these tests are the linear model's
    nlu_cache.clear_memory()
    yield
    nlu_cache.clear_memory()


def _check_contract(ranked: list[IntentScore]) -> None:
    confidences = [s.confidence for s in ranked]
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert sum(confidences) <= 1.0 + 1e-6
    assert confidences == sorted(confidences, reverse=True)
    assert len({s.intent for s in ranked}) == len(ranked)


def test_tiny_flow_free_speech_lands_on_the_right_intent():
    rec = build_recognizer(
        {
            "card_lost": ["lost card", "my card was stolen"],
            "balance": ["check my balance", "how much money do I have"],
            "agent": ["agent", "talk to a person"],
        }
    )
    for said, want in [
        ("I lost my card", "card_lost"),
        ("Um, somebody stole my card!", "card_lost"),
        ("how much money is in my account", "balance"),
        ("can I talk to a real person", "agent"),
    ]:
        ranked = rec.rank(said)
        _check_contract(ranked)
        assert ranked[0].intent == want, (said, ranked)
        assert ranked[0].confidence >= DEFAULT_THRESHOLD, (said, ranked)


@pytest.mark.parametrize("node", sorted(FLOW))
def test_example_flow_nodes(node):
    spec = FLOW[node]
    rec = build_recognizer(spec["intents"])
    for said, want in spec["said"]:
        ranked = rec.rank(said)
        _check_contract(ranked)
        assert ranked and ranked[0].intent == want, (said, ranked)
        assert ranked[0].confidence >= DEFAULT_THRESHOLD, (said, ranked)
    for said in spec["out_of_scope"]:
        ranked = rec.rank(said)
        _check_contract(ranked)
        assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)
    for said, readings in spec.get("ambiguous", []):
        ranked = rec.rank(said)
        assert {s.intent for s in ranked[:2]} == set(readings), (said, ranked)
        assert ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)  # offered as a menu


@pytest.mark.parametrize(
    "said",
    [
        "I WAS CHARGED TWICE FOR THE SAME COFFEE",
        "i was charged twice for the same coffee",
        "Uh, I was, um, charged twice... for the same coffee?!",
        "you know I was charged 2 times for the same coffee",
        "I was charged two times for the same coffee",
        "I was chargd twice for the same cofee",  # ASR/typing slips
    ],
)
def test_transcript_noise_does_not_change_the_answer(said):
    rec = build_recognizer(FLOW["main_menu"]["intents"])
    ranked = rec.rank(said)
    assert ranked[0].intent == "double_charge", ranked
    assert ranked[0].confidence >= DEFAULT_THRESHOLD


def test_low_asr_confidence_lowers_confidence_below_threshold():
    rec = build_recognizer(FLOW["main_menu"]["intents"])
    sure = rec.rank("I lost my card", asr_confidence=0.92)[0]
    doubtful = rec.rank("I lost my card", asr_confidence=0.1)[0]
    plain = rec.rank("I lost my card")[0]
    assert sure.intent == doubtful.intent == "card_lost"
    assert sure.confidence == pytest.approx(plain.confidence)
    assert doubtful.confidence < DEFAULT_THRESHOLD <= sure.confidence


def test_empty_or_meaningless_input_is_no_match():
    rec = build_recognizer(FLOW["main_menu"]["intents"])
    for said in ["", "   ", "?!", "um uh"]:
        assert rec.rank(said) == []


def test_oos_examples_are_learned_but_never_returned():
    rec = build_recognizer_from_csv(FIXTURES / "train.csv")
    for said in [
        "what's the score of the baseball game",
        "how tall is mount everest",
        "book me a hotel",
    ]:
        ranked = rec.rank(said)
        _check_contract(ranked)
        assert all(s.intent != "oos" for s in ranked)
        assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)
    assert rec.rank("I forgot my pin number")[0].intent == "pin_reset"


def test_temperature_is_fitted_when_there_is_enough_data():
    rec = build_recognizer_from_csv(FIXTURES / "train.csv")
    assert isinstance(rec, LinearRecognizer)
    assert rec.info.n_intents == 6 and rec.info.has_oos
    assert 0.3 <= rec.temperature <= 100 and rec.temperature != 4.0
    assert set(rec.intents) == {
        "card_lost",
        "card_arrival",
        "double_charge",
        "transfer",
        "balance",
        "pin_reset",
    }


def test_single_intent_flow_still_gates_off_topic_speech():
    rec = build_recognizer({"speak_to_agent": ["agent", "representative", "talk to a person"]})
    assert rec.rank("I want to talk to a person")[0].intent == "speak_to_agent"
    assert rec.rank("I want to talk to a person")[0].confidence >= DEFAULT_THRESHOLD
    off = rec.rank("what's the weather in Boston")
    assert not off or off[0].confidence < DEFAULT_THRESHOLD


def test_two_intents_without_common_words():
    rec = build_recognizer(FLOW["confirm"]["intents"])
    assert rec.rank("uh-huh")[0].intent == "yes"
    assert rec.rank("nah")[0].intent == "no"


@pytest.mark.parametrize(
    "examples, field",
    [
        ({}, "no intent"),
        ({"billing": []}, "billing"),
        ({"billing": ["  ", "?!"]}, "billing"),
        ({"billing": "pay my bill"}, "billing"),
        ({"": ["hello"]}, "intent names"),
        ({"oos": ["weather"]}, "no intent"),
    ],
)
def test_bad_examples_raise_clear_errors(examples, field):
    with pytest.raises(NLUError, match=field):
        build_recognizer(examples)


def test_csv_errors_name_the_file_and_line(tmp_path):
    missing = tmp_path / "nope.csv"
    with pytest.raises(NLUError, match="nope.csv"):
        build_recognizer_from_csv(missing)
    bad_header = tmp_path / "header.csv"
    bad_header.write_text("utterance,label\nhi,greet\n", encoding="utf-8")
    with pytest.raises(NLUError, match=r"header.csv: expected a header"):
        build_recognizer_from_csv(bad_header)
    empty_cat = tmp_path / "rows.csv"
    empty_cat.write_text("text,category\nhello,greet\nbye,\n", encoding="utf-8")
    with pytest.raises(NLUError, match=r"rows.csv:3: empty 'category'"):
        build_recognizer_from_csv(empty_cat)


def test_models_are_cached_by_content(tmp_path, monkeypatch):
    examples = {"a": ["lost card", "stolen card"], "b": ["check balance", "how much money"]}
    first = build_recognizer(examples)
    assert (
        build_recognizer(
            {"b": ["check balance", "how much money"], "a": ["lost card", "stolen card"]}
        )
        is first
    )
    files = list((tmp_path / "cache" / "nlu").glob("*.pkl"))
    assert len(files) == 1 and files[0].stem == nlu_cache.content_key(examples)

    # A restart: memory is empty, the disk copy is used, nothing is retrained.
    nlu_cache.clear_memory()

    def no_training(*args, **kwargs):
        raise AssertionError("retrained despite a cached model")

    monkeypatch.setattr(LinearRecognizer, "__init__", no_training)
    again = build_recognizer(examples)
    assert again is not first
    assert again.rank("my card got stolen") == first.rank("my card got stolen")

    # Different examples, different model.
    monkeypatch.undo()
    monkeypatch.setenv("IVR_CACHE_DIR", str(tmp_path / "cache"))
    other = build_recognizer({**examples, "c": ["pay my bill"]})
    assert other is not first and "c" in other.intents


def test_corrupt_cache_file_is_retrained(tmp_path):
    examples = {"a": ["lost card"], "b": ["check balance"]}
    key = nlu_cache.content_key(examples)
    target = tmp_path / "cache" / "nlu" / f"{key}.pkl"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not a pickle")
    rec = build_recognizer(examples)
    assert rec.rank("I lost my card")[0].intent == "a"


def test_disk_cache_can_be_disabled(tmp_path, monkeypatch):
    monkeypatch.setenv("IVR_CACHE_DIR", "")
    build_recognizer({"a": ["lost card"], "b": ["check balance"]})
    assert not (tmp_path / "cache").exists()


def test_confidences_are_probabilities_across_many_intents():
    rec = build_recognizer_from_csv(FIXTURES / "train.csv")
    for said in ["my card", "money", "pin", "charged"]:
        ranked = rec.rank(said)
        _check_contract(ranked)
        assert not any(math.isnan(s.confidence) for s in ranked)


_PROPERTY_REC = LinearRecognizer(FLOW["main_menu"]["intents"])
_PROPERTY_BIG = LinearRecognizer(examples_from_rows(read_labelled_csv(FIXTURES / "train.csv")))


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=80), asr=st.one_of(st.none(), st.floats(0, 1)))
def test_rank_contract_holds_for_any_text(text, asr):
    for rec in (_PROPERTY_REC, _PROPERTY_BIG):
        ranked = rec.rank(text, asr_confidence=asr)
        _check_contract(ranked)
        assert all(s.intent in rec.intents for s in ranked)


def test_content_free_answers_match_only_where_examples_are_content_free():
    menu = build_recognizer(FLOW["main_menu"]["intents"])
    for said in ["yes", "hello", "okay thanks", "I need help"]:
        ranked = menu.rank(said)
        assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)
    yes_no = build_recognizer({"yes": ["yes", "yeah"], "no": ["no", "nope"]})
    assert yes_no.default_threshold == DEFAULT_THRESHOLD
    assert yes_no.rank("yes please")[0].intent == "yes"
    assert yes_no.rank("no thanks")[0].intent == "no"
    assert yes_no.rank("what is the weather") == []


PARAPHRASE_FLOW = {
    "card_lost": ["lost card", "my card was stolen"],
    "balance": ["check my balance", "how much money do I have"],
    "agent": ["agent", "talk to a person"],
}


@pytest.mark.parametrize(
    "said, want",
    [
        ("I need to speak with someone", "agent"),
        ("what are my funds", "balance"),
        ("how much cash is in my account", "balance"),
        ("my debit card went missing", "card_lost"),
    ],
)
def test_flow_paraphrases_reach_the_right_intent_by_meaning(said, want):
    """Phrasings that share no content word with the examples, judged by word-piece meaning."""
    rec = build_recognizer(PARAPHRASE_FLOW)
    ranked = rec.rank(said)
    _check_contract(ranked)
    assert ranked and ranked[0].intent == want, (said, ranked)
    assert ranked[0].confidence >= DEFAULT_THRESHOLD, (said, ranked)


@pytest.mark.parametrize(
    "said",
    [
        "tell me a joke",
        "order a pizza",
        "I want to buy a car",
        "play some music",
        "book a flight to Paris",
        "what's the weather in Boston",
    ],
)
def test_off_topic_speech_stays_a_no_match_despite_meaning(said):
    ranked = build_recognizer(PARAPHRASE_FLOW).rank(said)
    assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, (said, ranked)


def test_a_paraphrase_closest_to_an_oos_example_is_no_match():
    rec = build_recognizer({**PARAPHRASE_FLOW, "oos": ["tell me a joke", "sing a song"]})
    ranked = rec.rank("say something funny")
    assert not ranked or ranked[0].confidence < DEFAULT_THRESHOLD, ranked
