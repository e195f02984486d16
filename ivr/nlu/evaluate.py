"""``ivr nlu eval``: train on one labelled file, answer another one row at a time."""

from __future__ import annotations

import resource
import sys
import time
from typing import Sequence

import numpy as np
from sklearn.metrics import f1_score

from ivr.nlu import IntentRecognizer, NLUError
from ivr.nlu.classifier import OOS_LABEL
from ivr.nlu.data import examples_from_rows

NO_MATCH = OOS_LABEL


def answer(recognizer: IntentRecognizer, text: str, threshold: float) -> str:
    """What the IVR does with an utterance: the top intent, or ``oos`` for no match."""
    ranked = recognizer.rank(text)
    if not ranked or ranked[0].confidence < threshold:
        return NO_MATCH
    return ranked[0].intent


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def evaluate(
    train: Sequence[tuple[str, str]],
    test: Sequence[tuple[str, str]],
    *,
    threshold: float | None = None,
    backend: str = "linear",
) -> dict[str, float | None]:
    """Train on ``train`` rows, classify ``test`` rows one by one, report the metrics.

    ``threshold`` defaults to the trained model's ``default_threshold``.
    ``accuracy`` is over in-scope rows and counts a "no match" as wrong;
    ``macro_f1`` is over the categories present in the test file, "no match"
    counting as a prediction of ``oos``. ``backend`` is ``linear`` or
    ``embeddings`` (an error, not a fallback, when its extra is missing).
    """
    return evaluate_thresholds(train, test, [threshold], backend=backend)[0]


def evaluate_thresholds(
    train: Sequence[tuple[str, str]],
    test: Sequence[tuple[str, str]],
    thresholds: Sequence[float | None],
    *,
    backend: str = "linear",
) -> list[dict[str, float | None]]:
    """:func:`evaluate` at several thresholds from one training and one pass over ``test``.

    Latency is per ``rank`` call; each threshold's metrics report the same timings.
    """
    from ivr.nlu.cache import BACKENDS
    from ivr.nlu.cache import train as train_model
    from ivr.nlu.embeddings import missing

    if backend not in BACKENDS:
        raise NLUError(f"unknown NLU backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if backend == "embeddings" and (reason := missing()) is not None:
        raise NLUError(f"backend 'embeddings' is not installed: {reason}")
    start, start_cpu = time.perf_counter(), time.process_time()
    model = train_model(examples_from_rows(train), backend)
    train_s, train_cpu_s = time.perf_counter() - start, time.process_time() - start_cpu

    model.rank(test[0][0])  # warm-up: first call pays lazy imports
    top: list[tuple[str, float]] = []
    latencies = np.empty(len(test))
    cpu = np.empty(len(test))
    for i, (text, _) in enumerate(test):
        t0, c0 = time.perf_counter(), time.process_time()
        ranked = model.rank(text)
        latencies[i], cpu[i] = time.perf_counter() - t0, time.process_time() - c0
        top.append((ranked[0].intent, ranked[0].confidence) if ranked else (NO_MATCH, 0.0))

    truth = np.array([c for _, c in test])
    in_scope = truth != OOS_LABEL
    labels = sorted(set(truth.tolist()))
    timing = {
        "p50_ms": round(float(np.percentile(latencies, 50) * 1000), 3),
        "p99_ms": round(float(np.percentile(latencies, 99) * 1000), 3),
        "p99_cpu_ms": round(float(np.percentile(cpu, 99) * 1000), 3),
        "train_s": round(train_s, 2),
        "train_cpu_s": round(train_cpu_s, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    out = []
    for threshold in thresholds:
        if threshold is None:
            threshold = model.default_threshold
        pred = np.array([i if c >= threshold and i != NO_MATCH else NO_MATCH for i, c in top])
        out.append(
            {
                "accuracy": round(float(np.mean(pred[in_scope] == truth[in_scope])), 4)
                if in_scope.any()
                else None,
                "macro_f1": round(
                    float(f1_score(truth, pred, labels=labels, average="macro", zero_division=0)),
                    4,
                ),
                "oos_recall": round(float(np.mean(pred[~in_scope] == NO_MATCH)), 4)
                if (~in_scope).any()
                else None,
                "in_scope_false_reject": (
                    round(float(np.mean(pred[in_scope] == NO_MATCH)), 4) if in_scope.any() else None
                ),
                **timing,
            }
        )
    return out
