"""M/D/1 ground truth: the exact Erlang/Crommelin distribution against moments, tail and simulation."""

import math

import numpy as np
import pytest

from perseus.calibration.theory import (
    lindley_waits,
    md1_percentiles,
    md1_second_moment_wait,
    md1_sojourn,
    md1_sojourn_cdf,
    md1_wait_cdf,
    md1_wait_quantile,
    pk_mean_wait,
)

# Gauss-Legendre nodes per service time: the CDF is an entire function on each [mD, (m+1)D), so
# 12 nodes integrate it to rounding error.
NODES, WEIGHTS = np.polynomial.legendre.leggauss(12)


def wait_moments(rate, service, tail=1e-15):
    """E[W] and E[W^2] from the exact CDF: integral of (1 - F) and of 2t (1 - F), one service time a piece."""
    m1 = m2 = 0.0
    start = 0.0
    while 1.0 - md1_wait_cdf(start, rate, service) > tail:
        ts = start + service * (NODES + 1) / 2
        survival = np.array([1.0 - md1_wait_cdf(t, rate, service) for t in ts])
        m1 += service / 2 * np.sum(WEIGHTS * survival)
        m2 += service / 2 * np.sum(WEIGHTS * 2 * ts * survival)
        start += service
    return m1, m2


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_exact_cdf_has_the_pollaczek_khinchine_and_takacs_moments(rho):
    service = 0.01
    rate = rho / service
    m1, m2 = wait_moments(rate, service)
    assert m1 == pytest.approx(pk_mean_wait(rate, service), rel=1e-9)
    assert m2 == pytest.approx(md1_second_moment_wait(rate, service), rel=1e-9)


def test_exact_cdf_below_one_service_time_is_the_first_term():
    # For t < D only k = 0 contributes: P(W <= t) = (1 - rho) exp(lambda t), with the atom 1 - rho at 0.
    rate, service = 40.0, 0.02
    assert md1_wait_cdf(0.0, rate, service) == pytest.approx(0.2, rel=1e-14)
    assert md1_wait_cdf(0.01, rate, service) == pytest.approx(0.2 * math.exp(0.4), rel=1e-14)
    assert md1_wait_cdf(-1.0, rate, service) == 0.0
    assert md1_sojourn_cdf(0.02, rate, service) == pytest.approx(0.2, rel=1e-14)


def test_exact_tail_is_exponential_far_out_where_double_precision_would_fail():
    # P(W > t) ~ C exp(-theta t), theta the root of lambda exp(theta D) = lambda + theta (the
    # Cramer-Lundberg exponent of S - A). At rho 0.95, t = 200 D, the alternating terms reach e^380.
    # In double precision the same sum is already -79 at rho 0.8, t = 40 D, and -3e17 at rho 0.95,
    # t = 67.6 D (tried while writing this); the decimal one still follows the asymptote.
    rate, service = 0.95, 1.0
    lo, hi = 1e-6, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rate * math.exp(mid * service) < rate + mid else (lo, mid)
    theta = lo
    s200 = 1.0 - md1_wait_cdf(200.0, rate, service)
    s201 = 1.0 - md1_wait_cdf(201.0, rate, service)
    assert 0 < s201 < s200
    assert s201 / s200 == pytest.approx(math.exp(-theta), rel=1e-6)


def test_quantile_inverts_the_cdf_and_respects_the_atom():
    rate, service = 40.0, 0.02  # rho 0.8
    assert md1_wait_quantile(0.1, rate, service) == 0.0  # inside the atom of mass 0.2 at zero
    for p in (0.5, 0.9, 0.99, 0.999):
        w = md1_wait_quantile(p, rate, service)
        assert md1_wait_cdf(w, rate, service) == pytest.approx(p, abs=1e-10)


# Monte-Carlo spread of the simulated percentiles at 2,000,000 customers, rho 0.8, measured over 20
# seeds: sd 0.26%, 0.32%, 0.45%, 1.0% (lower at rho 0.5). The tolerances are about 4 sd.
SIMULATION_TOLERANCE = {50: 0.01, 90: 0.015, 95: 0.02, 99: 0.04}


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_exact_percentiles_agree_with_the_lindley_simulation(rho):
    service = 0.02
    rate, qs = rho / service, tuple(SIMULATION_TOLERANCE)
    exact = md1_percentiles(rate, service, qs)
    simulated = np.percentile(md1_sojourn(rate, service, customers=2_000_000, seed=11), qs) * 1e3
    for q, sim in zip(qs, simulated, strict=True):
        assert sim == pytest.approx(exact[q], rel=SIMULATION_TOLERANCE[q])


def test_reference_calibration_figures_are_reproduced():
    # /work/shared/ENVIRONMENT.md: D = 20.6 ms, rho = 0.72 -> 37.4, 89.7, 112.5, 166.2 ms, from a
    # simulation (so about 0.5% of Monte-Carlo noise at p99).
    got = md1_percentiles(0.72 / 0.0206, 0.0206, (50, 90, 95, 99))
    for q, ref in {50: 37.4, 90: 89.7, 95: 112.5, 99: 166.2}.items():
        assert got[q] == pytest.approx(ref, rel=0.01)


def test_percentiles_are_exact_and_ignore_the_seed():
    p = md1_percentiles(40, 0.02, (50, 90, 95, 99))
    assert 20.0 <= p[50] < p[90] < p[95] < p[99]
    assert p == md1_percentiles(40, 0.02, (50, 90, 95, 99), seed=123)
    assert md1_percentiles(10, 0.02, (50,))[50] == pytest.approx(20.0)  # rho 0.2: the median waits 0


def test_vectorised_lindley_equals_the_recursion():
    rng = np.random.default_rng(3)
    gaps = rng.exponential(1 / 40, size=5000)
    service = 0.02
    waits = [0.0]
    for gap in gaps[1:]:
        waits.append(max(0.0, waits[-1] + service - gap))
    np.testing.assert_allclose(lindley_waits(service, gaps), waits, atol=1e-12)


@pytest.mark.parametrize("rho", [0.3, 0.5, 0.8])
def test_simulated_mean_wait_matches_pollaczek_khinchine(rho):
    service = 0.01
    rate = rho / service
    sojourn = md1_sojourn(rate, service, customers=1_000_000, seed=7)
    assert sojourn.mean() - service == pytest.approx(pk_mean_wait(rate, service), rel=0.03)


def test_unstable_queue_is_refused():
    with pytest.raises(ValueError, match="no steady state"):
        md1_sojourn(100, 0.02)
    with pytest.raises(ValueError, match="no steady state"):
        md1_percentiles(100, 0.02, (99,))
