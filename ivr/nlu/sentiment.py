"""Caller sentiment and urgency from their words, for flows to branch on.

Rule-based on purpose: it must be explainable ("why did this call jump the
queue?"), run in microseconds, and need no training data. :func:`analyze`
returns a :class:`Sentiment`; the engine stores ``as_dict()`` in session data
under ``sentiment`` so a flow can test ``sentiment.urgent`` or
``sentiment.escalate``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

from ivr.nlu.text import prepare


def _rx(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b")


_CALLED = r"(?:call|called|calling|rang|phoned)"
_ORDINAL = (
    r"(?:second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|nth|umpteenth"
    r"|NUM(?:st|nd|rd|th)?)"
)
_REPEAT = _rx(
    rf"{_ORDINAL} time",
    rf"{_ORDINAL} call",
    rf"{_CALLED} (?:you |in |here )?"
    r"(?:NUM|several|many|multiple|so many|a few|a bunch of|a dozen) times",
    rf"(?:already|previously|just) {_CALLED}",
    rf"{_CALLED} (?:you |in |here )?"
    r"(?:already|before|yesterday|last week|earlier|this morning|again)",
    rf"(?:keep|kept) {_CALLED}",
    rf"(?:been|was) {_CALLED} (?:you |for )?(?:all|NUM|days|weeks|the whole)",
    rf"every time i {_CALLED}",
    r"calling (?:you )?again",
    r"(?:spoke|talked|spoken|talking) (?:to|with) "
    r"(?:someone|somebody|an agent|a person|you|your) [a-z ]{0,20}"
    r"(?:already|before|yesterday|last week|last time|earlier)",
    r"told (?:me|us) (?:last time|before|yesterday)",
    r"again and again",
    r"over and over",
)
_FRAUD = _rx(
    r"fraud\w*",
    r"scam\w*",
    r"stolen",
    r"stole",
    r"steal\w*",
    r"theft",
    r"thief",
    r"hack\w*",
    r"phish\w*",
    r"compromised",
    r"unauthori[sz]ed",
    r"identity theft",
    r"(?:did not|never) (?:make|made|authori[sz]e|do|buy|order) (?:this|that|these|those|the|any)",
    r"(?:do not|did not|can not) recogni[sz]e (?:this|that|these|those|the|a|an)",
    r"not (?:mine|me)",
    r"was not me",
    r"(?:someone|somebody|some one) (?:else )?(?:used|is using|has used|took|accessed|got into|"
    r"got in to|logged into|withdrew|spent|charged)",
    r"strange (?:charge|transaction|payment)\w*",
    r"suspicious",
)
_URGENT = _rx(
    r"urgent\w*",
    r"emergenc\w*",
    r"immediately",
    r"right (?:now|away)",
    r"asap",
    r"as soon as possible",
    r"straight away",
    r"(?:can not|could not) wait",
    r"need (?:it|this|help|the money|money) (?:now|today|tonight)",
    r"stranded",
    r"stuck (?:abroad|overseas|here|at)",
    r"hurry",
    r"critical",
    r"life or death",
    r"deadline",
    r"(?:before|by) (?:tonight|today|tomorrow|the end of the day)",
    r"losing money",
    r"still (?:being|getting) (?:charged|taken)",
    r"(?:block|freeze|cancel|stop) (?:my|the) card",
    r"no money (?:for|to)",
    r"(?:can not|could not) (?:pay|buy) (?:for )?(?:food|rent|my rent|groceries|medicine)",
)
_ANGRY = _rx(
    r"angry",
    r"furious",
    r"livid",
    r"pissed",
    r"outrage\w*",
    r"disgust\w*",
    r"unacceptable",
    r"ridiculous",
    r"absurd",
    r"pathetic",
    r"incompetent",
    r"useless",
    r"(?:what a|is a|such a) joke",
    r"worst",
    r"hate",
    r"sick (?:and tired )?of",
    r"fed up",
    r"damn\w*",
    r"hell",
    r"crap\w*",
    r"shit\w*",
    r"bullshit",
    r"fuck\w*",
    r"f ing",
    r"bloody",
    r"stupid",
    r"idiot\w*",
    r"sue",
    r"lawyer",
    r"(?:close|closing|cancel|cancelling|canceling) my account",
    r"(?:taking|take|move|moving) my (?:money|business|account)",
    r"report (?:you|this)",
    r"complain\w* (?:to|about) (?:the )?(?:ombudsman|regulator|manager|supervisor)",
)
_FRUSTRATED = _rx(
    r"frustrat\w*",
    r"annoy\w*",
    r"irritat\w*",
    r"upset",
    r"disappoint\w*",
    r"exhausted",
    r"still (?:not|no|have not|has not|waiting|haven|nothing|do not|does not|did not|can not)",
    r"(?:keep|keeps|kept) "
    r"(?:getting|having|happening|failing|saying|asking|telling|declining|charging)",
    r"(?:nobody|no one|no body) "
    r"(?:helps|helped|is helping|will help|answers|answered|listens|calls|called|got back)",
    r"been waiting",
    r"waiting (?:for )?(?:ages|forever|hours|days|weeks|months)",
    r"(?:for|over|in) (?:NUM|several|many) (?:minutes|hours|days|weeks|months)",
    r"(?:happened|happening|declined|failed|broken|down|not working|wrong) again",
    r"on hold",
    r"(?:does not|do not|did not|never|will not|still not) work\w*",
    r"why is (?:it|this) so (?:hard|difficult|complicated)",
    r"what is the point",
    r"come on",
    r"seriously",
    r"not (?:happy|good enough|acceptable|fair|right)",
    r"(?:wast|wasting|wasted) (?:my|of) time",
    r"(?:can not|could not) believe",
    r"not helpful",
    r"no help",
    r"get nowhere",
    r"going in circles",
    r"had enough",
)
_POSITIVE = _rx(
    r"thanks?",
    r"thank you",
    r"great",
    r"good",
    r"happy",
    r"glad",
    r"appreciate\w*",
    r"perfect",
    r"awesome",
    r"excellent",
    r"wonderful",
    r"lovely",
    r"love",
    r"helpful",
    r"nice",
    r"brilliant",
    r"amazing",
    r"pleased",
    r"fantastic",
    r"cheers",
)
_NEGATIVE = _rx(
    r"bad",
    r"terrible",
    r"horrible",
    r"awful",
    r"wrong",
    r"problem\w*",
    r"issue\w*",
    r"broken",
    r"declined",
    r"failed",
    r"fail\w*",
    r"error\w*",
    r"lost",
    r"missing",
    r"worried",
    r"worry\w*",
    r"scared",
    r"afraid",
    r"confus\w*",
    r"unhappy",
    r"sad",
    r"poor",
    r"mess\w*",
    r"mistake\w*",
    r"not (?:working|received|arrived)",
    r"(?:twice|double) charged",
    r"charged twice",
    r"overcharged",
)
_NEGATION = re.compile(r"\b(?:not|no|never|hardly)\s+(?:\w+\s+)?$")


@dataclass(frozen=True, slots=True)
class Sentiment:
    """How the caller sounds: valence in [-1, 1] and flags a flow can branch on."""

    score: float
    frustrated: bool
    angry: bool
    urgent: bool
    repeat_caller: bool
    fraud_risk: bool
    cues: tuple[str, ...] = ()

    @property
    def escalate(self) -> bool:
        """True when the call deserves priority or a human: angry, urgent, fraud or a repeat."""
        return self.angry or self.urgent or self.fraud_risk or self.repeat_caller

    def as_dict(self) -> dict[str, object]:
        """JSON-able form stored in session data (``escalate`` included)."""
        out = asdict(self)
        out["cues"] = list(self.cues)
        out["escalate"] = self.escalate
        return out


def _hits(pattern: re.Pattern[str], text: str) -> list[str]:
    return [m.group(0) for m in pattern.finditer(text)]


def _valence(pattern: re.Pattern[str], text: str) -> tuple[float, list[str]]:
    """Count matches, a negated one ("not happy") counting against."""
    total, cues = 0.0, []
    for m in pattern.finditer(text):
        negated = bool(_NEGATION.search(text[: m.start()]))
        total += -1.0 if negated else 1.0
        cues.append(("not " if negated else "") + m.group(0))
    return total, cues


def analyze(text: str) -> Sentiment:
    """Sentiment and urgency of one caller utterance (or a whole call's transcript)."""
    said = prepare(text or "")
    exclaims = (text or "").count("!")
    shouting = sum(1 for w in re.findall(r"[A-Za-z]{3,}", text or "") if w.isupper()) >= 3

    repeat = _hits(_REPEAT, said)
    fraud = [h for h in _hits(_FRAUD, said) if not _NEGATION.search(said[: said.find(h)])]
    urgent = _hits(_URGENT, said)
    angry = _hits(_ANGRY, said)
    frustrated = _hits(_FRUSTRATED, said)
    pos, pos_cues = _valence(_POSITIVE, said)
    neg, neg_cues = _valence(_NEGATIVE, said)

    is_angry = bool(angry) or (shouting and bool(frustrated)) or exclaims >= 3
    is_frustrated = bool(frustrated) or bool(repeat) or is_angry or shouting
    raw = (
        pos
        - neg
        - 1.5 * len(angry)
        - 1.0 * len(frustrated)
        - 0.75 * bool(repeat)
        - 0.5 * bool(fraud)
    )
    raw -= 0.5 * min(exclaims, 3) * (raw < 0) + (1.0 if shouting else 0.0)
    # "thanks, but this is ridiculous" is not positive: anger/frustration cap the score.
    score = math.tanh(raw / 2.0)
    if is_angry or is_frustrated:
        score = min(score, -0.2)
    cues = tuple(dict.fromkeys(repeat + fraud + urgent + angry + frustrated + pos_cues + neg_cues))
    return Sentiment(
        score=round(score, 3),
        frustrated=is_frustrated,
        angry=is_angry,
        urgent=bool(urgent) or bool(fraud),
        repeat_caller=bool(repeat),
        fraud_risk=bool(fraud),
        cues=cues,
    )
