"""Synthetic callers walking the real IVR flow (``ivr.engine``), one journey per call.

A caller with a true intent answers every question of the flow as a person would:
at an ``ask`` node that offers their intent they press its key or say one of its
example phrases (with some words garbled), elsewhere they pick an offered answer at
random; they type digits of a plausible length at ``collect`` nodes and answer
surveys. The flow engine (and its intent recognizer) decides what happens. A
journey yields what the staffing model needs: seconds spent in the IVR (speech at
``words_per_second`` plus ``response_seconds`` per answer), whether the call ended
in the IVR, and the queue and skills the flow routed it to.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulation.errors import ScenarioError

__all__ = ["Journey", "FlowCallers"]

_MAX_TURNS = 40


@dataclass(frozen=True, slots=True)
class Journey:
    """One caller's way through the IVR."""

    ivr_seconds: float
    queue: str | None  # None: the call ended in the IVR (self-service, or transferred out)
    skills: tuple[tuple[str, int], ...]
    outcome: str


class FlowCallers:
    """Draws journeys through one flow file for callers of a given true intent."""

    def __init__(
        self,
        path: Path,
        *,
        speech_share: float = 0.6,
        garble_share: float = 0.2,
        words_per_second: float = 2.5,
        response_seconds: float = 3.0,
        day_start: dt.datetime | None = None,
        source: str = "<scenario>",
    ) -> None:
        try:
            from ivr.flows import load_flow
        except ImportError as exc:  # pragma: no cover - ivr is part of the project
            raise ScenarioError(
                source, "flow.path", f"the flow engine is not importable: {exc}"
            ) from None
        try:
            self.flow = load_flow(path)
        except Exception as exc:  # FlowError lists every problem of the file
            raise ScenarioError(source, "flow.path", f"{path}: {exc}") from None
        self.speech_share = speech_share
        self.garble_share = garble_share
        self.words_per_second = words_per_second
        self.response_seconds = response_seconds
        if day_start is None:  # a Monday, 09:00 in the flow's own time zone
            from zoneinfo import ZoneInfo

            day_start = dt.datetime(
                2026, 1, 5, 9, 0, tzinfo=ZoneInfo(str(getattr(self.flow.spec, "timezone", "UTC")))
            )
        self.day_start = day_start
        words = {
            w
            for n in self.flow.nodes.values()
            for i in getattr(n, "intents", {}).values()
            for e in getattr(i, "examples", [])
            for w in e.split()
        }
        self._noise = sorted(words) or ["um"]

    # -- one caller -----------------------------------------------------------------
    def journey(
        self, intent: str, rng: np.random.Generator, index: int = 0, at_seconds: float = 0.0
    ) -> Journey:
        """Walk the flow as a caller who wants ``intent``, calling ``at_seconds`` into the day."""
        from ivr.engine import (
            CallerInput,
            Enqueue,
            Gather,
            Hangup,
            Record,
            RecordingDone,
            Say,
            start,
            step,
        )

        flow = self.flow
        seconds = 0.0
        t0 = self.day_start + dt.timedelta(seconds=at_seconds)
        now = t0
        actions, session = start(flow, f"sim-{index}", "+15550000000", "+15551111111", now)
        for _ in range(_MAX_TURNS):
            seconds += self._speech_seconds(actions, Say, Gather)
            for a in actions:
                if isinstance(a, Enqueue):
                    r = a.request
                    return Journey(
                        seconds,
                        r.queue,
                        tuple(sorted(r.skills.items())),
                        session.outcome or "routed",
                    )
                if isinstance(a, Hangup):
                    return Journey(seconds, None, (), session.outcome or "completed_in_ivr")
            if session.status != "active":
                return Journey(seconds, None, (), session.outcome or session.status)
            if any(isinstance(a, Record) for a in actions):
                event: Any = RecordingDone(None, 20)
                seconds += 20.0
            else:
                event = self._answer(session.node, intent, rng, CallerInput)
                seconds += self.response_seconds
            now = t0 + dt.timedelta(seconds=seconds)
            actions, session = step(flow, session, event, now)
        return Journey(seconds, None, (), "too_many_turns")

    def _speech_seconds(self, actions: list[Any], say_type: type, gather_type: type) -> float:
        words = 0
        for a in actions:
            if isinstance(a, say_type):
                words += len(str(getattr(a, "text", "")).split())
            elif isinstance(a, gather_type):
                for p in getattr(a, "prompts", ()):
                    words += len(str(getattr(p, "text", "")).split())
        return words / self.words_per_second

    def _answer(
        self, node_id: str | None, intent: str, rng: np.random.Generator, caller_input: type
    ) -> Any:
        node = self.flow.nodes.get(node_id) if node_id else None
        kind = getattr(node, "type", "")
        if kind == "ask":
            options = node.intents  # type: ignore[union-attr]
            name = intent if intent in options else list(options)[int(rng.integers(len(options)))]
            choice = options[name]
            speech_ok = "speech" in node.input and choice.examples  # type: ignore[union-attr]
            if speech_ok and (not choice.keys or rng.random() < self.speech_share):
                phrase = choice.examples[int(rng.integers(len(choice.examples)))].split()
                if rng.random() < self.garble_share:
                    phrase[int(rng.integers(len(phrase)))] = self._noise[
                        int(rng.integers(len(self._noise)))
                    ]
                return caller_input(
                    speech=" ".join(phrase), confidence=float(rng.uniform(0.6, 0.95))
                )
            if choice.keys:
                return caller_input(digits=choice.keys[int(rng.integers(len(choice.keys)))])
            return caller_input(speech=name)
        if kind == "collect":
            lo, hi = node.min_digits, node.max_digits  # type: ignore[union-attr]
            n = int(rng.integers(lo, hi + 1))
            return caller_input(digits="".join(str(int(d)) for d in rng.integers(0, 10, n)) + "#")
        if kind == "survey":
            return caller_input(digits=str(int(rng.integers(1, 6))))
        return caller_input()

    # -- many callers -----------------------------------------------------------------
    def sample(
        self, intent: str, n: int, rng: np.random.Generator, at_seconds: float = 0.0
    ) -> list[Journey]:
        """``n`` independent journeys of callers wanting ``intent``, calling at ``at_seconds``."""
        return [self.journey(intent, rng, k, at_seconds) for k in range(n)]


def journey_pools(scenario: Any, rng: np.random.Generator) -> list[list[list[Journey]]]:
    """Journeys per (intent, interval) for a scenario with a ``flow`` (drawn at mid-interval)."""
    spec = scenario.flow
    callers = FlowCallers(
        scenario.resolve(spec.path),
        speech_share=spec.speech_share,
        garble_share=spec.garble_share,
        words_per_second=spec.words_per_second,
        response_seconds=spec.response_seconds,
        day_start=spec.day_start,
        source=scenario.source,
    )
    width = scenario.interval_seconds
    return [
        [
            callers.sample(it.name, spec.samples_per_interval, rng, (j + 0.5) * width)
            for j in range(scenario.n_intervals)
        ]
        for it in scenario.intent_list
    ]
