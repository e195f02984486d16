"""The nearest-examples kernel vote of large example sets (:mod:`ivr.nlu.neighbours`)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.nlu.classifier import LinearRecognizer
from ivr.nlu.neighbours import NeighbourVote
from ivr.nlu.text import prepare


def _clusters(n_classes: int, per_class: int, dims: int, seed: int = 0):
    """Rows scattered around one random centre per class, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_classes, dims)) * 3
    y = np.repeat(np.arange(n_classes), per_class)
    return (centres[y] + rng.standard_normal((len(y), dims))).astype(np.float32), y


def test_an_exact_duplicate_of_an_example_gets_its_class():
    x, y = _clusters(6, 40, 320)
    vote = NeighbourVote(x.copy(), y, 6)  # (it centres its argument in place)
    for i in (0, 75, 239):
        p = vote.probabilities(x[i])
        assert int(np.argmax(p)) == y[i]
        assert abs(float(p.sum()) - 1.0) < 1e-9 and (p >= 0).all()


def test_the_coarse_pass_finds_the_exact_nearest_example():
    """More examples than candidates: the two-pass search must still find the closest one."""
    x, y = _clusters(40, 60, 320, seed=1)
    vote = NeighbourVote(x.copy(), y, 40)
    rng = np.random.default_rng(2)
    exact = vote._examples
    for i in rng.choice(len(y), size=30, replace=False):
        query = x[i] + rng.standard_normal(320).astype(np.float32) * 0.5
        ids, sims = vote.nearest(query)
        q = (query - vote._mean) @ vote._proj
        brute = exact @ (q / np.linalg.norm(q))
        assert len(ids) <= 200 < len(y)
        assert ids[int(np.argmax(sims))] == int(np.argmax(brute))
        np.testing.assert_allclose(sims, brute[ids], atol=1e-5)


def test_a_near_duplicate_wins_over_a_crowd_of_weaker_neighbours():
    """The kernel weighs by closeness: one very close example outvotes many far ones."""
    rng = np.random.default_rng(3)
    far = rng.standard_normal((30, 16)).astype(np.float32)
    close = np.ones((1, 16), dtype=np.float32) * 4
    x = np.vstack([far, close, -close])
    y = np.array([0] * 30 + [1, 2])
    p = NeighbourVote(x.copy(), y, 3, k=31).probabilities(close[0] * 1.01)
    assert int(np.argmax(p)) == 1 and p[1] > 0.9


def test_an_empty_row_gets_a_uniform_vote():
    x, y = _clusters(3, 10, 32)
    vote = NeighbourVote(x, y, 3)
    p = vote.probabilities(vote._mean)  # zero once centred
    np.testing.assert_allclose(p, np.full(3, 1 / 3))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=24, max_size=24))
def test_any_row_gets_a_probability_vector(values):
    x, y = _clusters(4, 12, 24, seed=4)
    p = NeighbourVote(x, y, 4, dims=8).probabilities(np.array(values, dtype=np.float32))
    assert p.shape == (4,) and np.isfinite(p).all() and (p >= 0).all()
    assert abs(float(p.sum()) - 1.0) < 1e-9


def _large(n: int = 420) -> dict[str, list[str]]:
    """More than 2,000 examples over five topics: the large-set path."""
    topics = ["card delivery", "exchange rate", "pin code", "bank transfer", "refund request"]
    out = {t: [f"question {k} about my {t}" for k in range(n)] for t in topics}
    out["card delivery"].append("the plastic never turned up in my letterbox")
    out["refund request"].append("i would like my money back for the shoes")
    return out


LARGE = LinearRecognizer(_large())


def test_large_sets_vote_with_their_nearest_examples():
    assert LARGE._knn is not None and LARGE._net is not None
    assert LARGE._features.train_dense is None  # freed once the vote is built
    # The one example phrased like this one is its nearest, by meaning.
    p = LARGE.ungated_probabilities(prepare("the plastic never turned up in my letter box"))
    assert p is not None and abs(float(p.sum()) - 1.0) < 1e-6
    assert LARGE.classes[int(np.argmax(p))] == "card delivery"
    dense = LARGE._features.dense_one(prepare("i would like my money back for the shoes"))
    vote = LARGE._knn.probabilities(dense)
    assert LARGE.classes[int(np.argmax(vote))] == "refund request" and vote.max() > 0.9


def test_flow_sized_sets_have_no_neighbour_vote():
    small = LinearRecognizer({"billing": ["pay my bill"], "agent": ["talk to a person"]})
    assert small._knn is None and small._net is None
    assert small.rank("pay my bill")[0].intent == "billing"


def test_the_character_grams_cache_gives_the_batch_transform_row():
    """Words repeat inside an utterance and across utterances: counts add up per word."""
    features = LARGE._features
    for text in ["card card cards", "refund refund my refund", "card delivery", "zzz card"]:
        prepared = prepare(text)
        for _ in range(2):  # the second time from the cache
            idx, val = features.sparse_one(prepared)
            fast = np.zeros(features.width, dtype=np.float32)
            fast[idx] = val
            slow = features.transform([prepared]).toarray()[0]
            np.testing.assert_allclose(fast, slow, atol=1e-6)
