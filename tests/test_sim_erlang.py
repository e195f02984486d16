"""Erlang B/C/A: known values, identities, stability, and the staffing search."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.erlang import (
    agents_for_targets,
    erlang_a_metrics,
    erlang_b,
    erlang_c,
    erlang_c_metrics,
    queue_metrics,
)
from simulation.errors import AnalyticError, SimulationError


def erlang_c_exact(n: int, a: Fraction) -> float:
    """Textbook formula with exact rationals (fine for small n)."""
    top = a**n / math.factorial(n) * n / (n - a)
    bottom = sum(a**k / math.factorial(k) for k in range(n)) + top
    return float(top / bottom)


@pytest.mark.parametrize(
    "n,a", [(1, Fraction(1, 2)), (5, Fraction(7, 2)), (12, Fraction(10)), (30, Fraction(57, 2))]
)
def test_erlang_c_matches_the_factorial_formula(n: int, a: Fraction) -> None:
    assert erlang_c(n, float(a)) == pytest.approx(erlang_c_exact(n, a), rel=1e-12)


def test_textbook_values() -> None:
    # 1000 calls/h, 180 s, 55 agents: 50 Erlangs
    m = erlang_c_metrics(55, 1000, 180, 20)
    assert m.p_wait == pytest.approx(erlang_c_exact(55, Fraction(50)), rel=1e-10)
    assert m.asa_seconds == pytest.approx(m.p_wait * 180 / 5)
    assert m.service_level == pytest.approx(1 - m.p_wait * math.exp(-5 / 180 * 20))
    assert erlang_b(1, 1.0) == pytest.approx(0.5)


def ctmc_erlang_a(n: int, lam: float, mu: float, theta: float, k_max: int = 400) -> np.ndarray:
    """Stationary law of M/M/n+M by solving the truncated birth-death chain directly."""
    size = n + k_max + 1
    q = np.zeros((size, size))
    for j in range(size - 1):
        q[j, j + 1] = lam
        q[j + 1, j] = min(j + 1, n) * mu + max(j + 1 - n, 0) * theta
    np.fill_diagonal(q, -q.sum(axis=1))
    a = np.vstack([q.T, np.ones(size)])
    b = np.zeros(size + 1)
    b[-1] = 1.0
    return np.linalg.lstsq(a, b, rcond=None)[0]


@pytest.mark.parametrize(
    "n,rate,aht,pat", [(3, 60, 180, 60), (10, 220, 180, 300), (25, 500, 200, 90)]
)
def test_erlang_a_matches_a_direct_ctmc_solution(
    n: int, rate: float, aht: float, pat: float
) -> None:
    lam, mu, theta = rate / 3600, 1 / aht, 1 / pat
    pi = ctmc_erlang_a(n, lam, mu, theta)
    m = erlang_a_metrics(n, rate, aht, pat, 20)
    p_wait = pi[n:].sum()
    mean_q = float(np.dot(pi[n:], np.arange(pi.size - n)))
    assert m.p_wait == pytest.approx(p_wait, rel=1e-7)
    assert m.mean_queue == pytest.approx(mean_q, rel=1e-7)
    # abandonment: theta E[Q] / lambda (rate conservation) equals 1 - P(served)
    assert m.abandon_rate == pytest.approx(theta * mean_q / lam, rel=1e-7)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 600),
    occ=st.floats(0.3, 1.3),
    aht=st.floats(30, 900),
    pat=st.floats(10, 2000),
    t=st.floats(0, 120),
)
def test_erlang_a_is_a_proper_law_and_consistent(
    n: int, occ: float, aht: float, pat: float, t: float
) -> None:
    rate = occ * n * 3600 / aht
    m = erlang_a_metrics(n, rate, aht, pat, t)
    for p in (m.p_wait, m.service_level, m.abandon_rate, m.occupancy):
        assert -1e-12 <= p <= 1 + 1e-12
    assert math.isfinite(m.asa_seconds) and m.asa_seconds >= 0
    # answered within T never exceeds answered; a call not waiting is answered within T
    assert m.service_level <= 1 - m.abandon_rate + 1e-9
    assert m.service_level >= 1 - m.p_wait - 1e-9
    lam = rate / 3600
    assert m.abandon_rate == pytest.approx(m.mean_queue / pat / lam, rel=1e-6, abs=1e-12)
    # Little's law over all callers: mean wait = E[Q] / lambda >= answered share * ASA
    assert (1 - m.abandon_rate) * m.asa_seconds <= m.mean_queue / lam + 1e-9


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), occ=st.floats(0.2, 0.98), aht=st.floats(30, 600))
def test_erlang_a_tends_to_erlang_c_for_very_patient_callers(
    n: int, occ: float, aht: float
) -> None:
    rate = occ * n * 3600 / aht
    c = erlang_c_metrics(n, rate, aht, 20)
    # the gap closes as 1/patience: at 1e9 s it is still 1e-3 of the ASA for one agent
    # at 98% occupancy (n=1, occ=0.98, aht=201), so be patient enough for the tolerance
    a = erlang_a_metrics(n, rate, aht, 1e12, 20)
    assert a.p_wait == pytest.approx(c.p_wait, abs=1e-4)
    assert a.service_level == pytest.approx(c.service_level, abs=1e-4)
    assert a.asa_seconds == pytest.approx(c.asa_seconds, rel=1e-3, abs=1e-4)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 400), occ=st.floats(0.5, 1.2), pat=st.one_of(st.none(), st.floats(20, 600)))
def test_more_agents_never_hurt(n: int, occ: float, pat: float | None) -> None:
    rate = occ * n * 20.0
    if pat is None and occ >= 1:
        return
    m0 = queue_metrics(n, rate, 180, 20, pat)
    m1 = queue_metrics(n + 1, rate, 180, 20, pat)
    assert m1.service_level >= m0.service_level - 1e-12
    assert m1.p_wait <= m0.p_wait + 1e-12
    assert m1.abandon_rate <= m0.abandon_rate + 1e-12
    assert m1.asa_seconds <= m0.asa_seconds + 1e-9


def test_hundreds_of_agents_are_stable_and_fast() -> None:
    import time

    t0 = time.perf_counter()
    for n in (500, 1000, 2000):
        c = erlang_c_metrics(n, n * 0.97 * 20, 180, 20)
        a = erlang_a_metrics(n, n * 1.05 * 20, 180, 120, 20)
        assert 0 < c.p_wait < 1 and 0 < a.p_wait <= 1 and 0 < a.abandon_rate < 0.1
    assert time.perf_counter() - t0 < 2.0


def test_unstable_erlang_c_says_so() -> None:
    m = erlang_c_metrics(10, 10 * 20, 180, 20)  # load == agents
    assert m.p_wait == 1.0 and m.service_level == 0.0 and math.isinf(m.asa_seconds)


@settings(max_examples=30, deadline=None)
@given(
    rate=st.floats(10, 8000),
    aht=st.floats(60, 600),
    sl=st.floats(0.5, 0.95),
    pat=st.one_of(st.none(), st.floats(30, 600)),
)
def test_agents_for_targets_is_the_fewest(
    rate: float, aht: float, sl: float, pat: float | None
) -> None:
    cap = 0.05 if pat is not None else None
    n = agents_for_targets(rate, aht, sl, 20, max_abandon=cap, patience_seconds=pat)

    def meets(k: int) -> bool:
        if k < 1:
            return False
        m = queue_metrics(k, rate, aht, 20, pat)
        return m.service_level >= sl and (cap is None or m.abandon_rate <= cap)

    assert meets(n) and not meets(n - 1)


def test_bad_parameters_raise_the_simulator_error() -> None:
    with pytest.raises(AnalyticError):
        erlang_c_metrics(0, 100, 180, 20)
    with pytest.raises(SimulationError):
        erlang_a_metrics(5, 100, -1, 60, 20)
