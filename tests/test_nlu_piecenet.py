"""The fine-tuned word-piece network, and the default install's freedom from torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.nlu.piecenet import PieceNet
from ivr.nlu.text import prepare

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = {
    "card_arrival": [
        "my card has not arrived yet",
        "when will my new card come",
        "still waiting for the card in the post",
        "the card you sent never showed up",
        "how long does card delivery take",
        "card not delivered",
    ],
    "transfer": [
        "send money to my friend",
        "how do I transfer funds to another account",
        "make a bank transfer",
        "move money between accounts",
        "wire cash to my brother",
        "pay someone from my account",
    ],
    "pin": [
        "I forgot my pin",
        "my pin is blocked",
        "reset my pin number",
        "how do I change my pin",
        "unlock the pin code",
        "entered the wrong pin three times",
    ],
}
CLASSES = sorted(EXAMPLES)


def _fit(seed: int = 0) -> PieceNet:
    texts = [prepare(t) for c in CLASSES for t in EXAMPLES[c]]
    y = np.array([CLASSES.index(c) for c in CLASSES for _ in EXAMPLES[c]])
    return PieceNet(texts, y, len(CLASSES), seed=seed, epochs=60)


NET = _fit()


def test_it_learns_its_examples_and_generalises_to_new_wording():
    for c in CLASSES:
        for t in EXAMPLES[c]:
            assert CLASSES[int(np.argmax(NET.probabilities(prepare(t))))] == c
    # Words no example used, recognised through their word pieces' vectors.
    assert CLASSES[int(np.argmax(NET.probabilities(prepare("card delivery status"))))] == (
        "card_arrival"
    )
    assert CLASSES[int(np.argmax(NET.probabilities(prepare("transfer money abroad"))))] == (
        "transfer"
    )


def test_training_is_reproducible_and_depends_on_the_seed():
    again = _fit(0)
    other = _fit(1)
    text = prepare("where is my card")
    assert np.array_equal(NET.probabilities(text), again.probabilities(text))
    assert not np.array_equal(NET.probabilities(text), other.probabilities(text))


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_any_transcript_gets_a_probability_vector(text):
    p = NET.probabilities(prepare(text))
    assert p.shape == (len(CLASSES),)
    assert np.isfinite(p).all() and (p >= 0).all()
    assert abs(float(p.sum()) - 1.0) < 1e-6


def test_the_default_install_imports_no_torch():
    """Training and answering with every default model type never imports torch or onnx."""
    code = textwrap.dedent(
        """
        import sys
        import ivr.cli, ivr.nlu.cli, ivr.nlu.evaluate
        from ivr.nlu import classifier
        from ivr.nlu.classifier import LinearRecognizer
        flow = {"billing": ["pay my bill", "a question about my bill"],
                "agent": ["talk to a person", "speak to someone"]}
        LinearRecognizer(flow).rank("I want to pay my bill")
        classifier._GATE_MAX_EXAMPLES = 2  # the large-set path: vectors and network too
        large = LinearRecognizer(flow)
        assert large._net is not None
        large.rank("pay the bill")
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in
                       {"torch", "transformers", "onnxruntime", "sentence_transformers"})
        print(heavy)
        """
    )
    env = {"PYTHONPATH": str(ROOT), "IVR_CACHE_DIR": "", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
