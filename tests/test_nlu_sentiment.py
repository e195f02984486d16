"""Sentiment and urgency flags on realistic caller utterances."""

from __future__ import annotations

import json

import pytest

from ivr.nlu.sentiment import Sentiment, analyze

FLAGS = ("frustrated", "angry", "urgent", "repeat_caller", "fraud_risk")


@pytest.mark.parametrize(
    "said, raised",
    [
        ("This is the third time I've called about this!", {"repeat_caller", "frustrated"}),
        ("I called yesterday and nobody helped me", {"repeat_caller", "frustrated"}),
        ("I'm calling again about my refund", {"repeat_caller", "frustrated"}),
        ("I've called you three times already", {"repeat_caller", "frustrated"}),
        ("someone used my card, there are charges I didn't make", {"fraud_risk", "urgent"}),
        ("my card was stolen", {"fraud_risk", "urgent"}),
        ("I think I've been scammed", {"fraud_risk", "urgent"}),
        ("I don't recognize this transaction", {"fraud_risk", "urgent"}),
        ("this is ridiculous, I want to speak to a manager", {"angry", "frustrated"}),
        ("I've been on hold for forty five minutes, this is unacceptable", {"angry", "frustrated"}),
        ("WHY IS MY CARD NOT WORKING AGAIN", {"angry", "frustrated"}),
        ("I'm so frustrated, my transfer still hasn't arrived", {"frustrated"}),
        ("um my card keeps getting declined", {"frustrated"}),
        ("I need to block my card right now", {"urgent"}),
        ("it's an emergency, I'm stranded abroad with no money", {"urgent"}),
        ("hi I'd like to check my balance please", set()),
        ("can you say that again", set()),
        ("tell me a joke", set()),
        ("how quickly will my card arrive", set()),
        ("do I have enough money for rent", set()),
        ("I lost my card", set()),
        ("thanks, that's great", set()),
    ],
)
def test_flags(said, raised):
    s = analyze(said)
    assert {f for f in FLAGS if getattr(s, f)} == raised, (said, s)
    assert s.escalate == bool(raised - {"frustrated"})


@pytest.mark.parametrize(
    "said, sign",
    [
        ("thanks, that's great, really helpful", 1),
        ("I'm not happy with the service", -1),
        ("this is ridiculous", -1),
        ("I was charged twice for the same coffee", -1),
        ("I'm not worried, just curious about the fee", 1),
        ("what's my balance", 0),
    ],
)
def test_score_sign(said, sign):
    score = analyze(said).score
    assert -1.0 <= score <= 1.0
    if sign > 0:
        assert score > 0.2
    elif sign < 0:
        assert score < -0.2
    else:
        assert score == 0.0


def test_angry_callers_score_lower_than_polite_ones():
    polite = analyze("could you help me with a transfer please, thank you")
    annoyed = analyze("my transfer still hasn't arrived")
    furious = analyze("my transfer STILL HAS NOT ARRIVED, this is absolutely ridiculous!!!")
    assert polite.score > annoyed.score > furious.score


def test_negated_fraud_is_not_fraud():
    assert not analyze("it was not stolen, I just lost it").fraud_risk
    assert analyze("I think it was stolen").fraud_risk


def test_as_dict_is_json_and_complete():
    s = analyze("This is the second time I call, someone hacked my account!")
    assert isinstance(s, Sentiment)
    data = json.loads(json.dumps(s.as_dict()))
    assert set(FLAGS) | {"score", "escalate", "cues"} <= set(data)
    assert data["repeat_caller"] and data["fraud_risk"] and data["escalate"]
    assert any("hack" in c for c in data["cues"])
    with pytest.raises(AttributeError):
        s.angry = True  # frozen


def test_empty_text():
    s = analyze("")
    assert s.score == 0.0 and not s.escalate and not s.frustrated
