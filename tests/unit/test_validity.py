"""LoadGen-style validity: the binomial early-stopping test against values worked by hand."""

import math

import pytest

from perseus.analysis.validity import binom_cdf, early_stopping_passes, judge, requests_needed


def test_binomial_cdf_matches_hand_values():
    # P(X <= 0) for n=10, p=0.1 is 0.9^10; P(X <= 1) adds 10 * 0.1 * 0.9^9.
    assert binom_cdf(0, 10, 0.1) == pytest.approx(0.9**10, rel=1e-12)
    assert binom_cdf(1, 10, 0.1) == pytest.approx(0.9**10 + 10 * 0.1 * 0.9**9, rel=1e-12)
    assert binom_cdf(10, 10, 0.3) == 1.0
    assert binom_cdf(-1, 10, 0.3) == 0.0


@pytest.mark.parametrize(
    ("percentile", "n_min"),
    [
        (99, 459),  # 0.99^n <= 0.01  ->  n >= ln(0.01)/ln(0.99) = 458.2
        (90, 44),  # 0.90^n <= 0.01  ->  n >= 43.7
        (95, 90),  # 0.95^n <= 0.01  ->  n >= 89.8
    ],
)
def test_zero_over_bound_needs_the_hand_worked_count(percentile, n_min):
    assert not early_stopping_passes(n_min - 1, 0, percentile)
    assert early_stopping_passes(n_min, 0, percentile)
    assert requests_needed(10, 0, percentile) == n_min


def test_one_over_bound_at_p99_by_hand():
    # P(X <= 1) = 0.99^n + n * 0.01 * 0.99^(n-1) <= 0.01 first holds at n = 662.
    def cdf1(n):
        return 0.99**n + n * 0.01 * 0.99 ** (n - 1)

    first = next(n for n in range(2, 2000) if cdf1(n) <= 0.01)
    assert first == 662
    assert not early_stopping_passes(first - 1, 1, 99)
    assert early_stopping_passes(first, 1, 99)


def test_over_allowance_can_never_pass():
    assert requests_needed(1000, 20, 99) is None
    verdict = judge(
        duration_s=60, requests=1000, over_sla=20, sla_met=False, percentile=99, min_duration_s=10, min_requests=100
    )
    assert not verdict.valid
    assert "2.00% of requests over the SLA" in verdict.verdict


def test_valid_when_every_condition_holds():
    v = judge(
        duration_s=60, requests=5000, over_sla=3, sla_met=True, percentile=99, min_duration_s=10, min_requests=100
    )
    assert v.valid and v.verdict == "VALID"


def test_short_run_gets_a_recommendation():
    v = judge(duration_s=4, requests=100, over_sla=0, sla_met=True, percentile=99, min_duration_s=10, min_requests=100)
    assert not v.valid
    assert not v.duration_ok and v.requests_ok and not v.early_stopping_ok
    assert "would need at least 359 more requests (459 in all)" in v.verdict


def test_large_counts_are_fast_and_finite():
    value = binom_cdf(50_000, 10_000_000, 0.01)
    assert math.isfinite(value) and 0.0 <= value <= 1.0


def test_near_allowance_recommendation_is_fast_and_bounded():
    # 0.999% over a 1% allowance needs hundreds of millions of requests: answered in constant time
    # per test (incomplete beta), not by summing millions of binomial terms.
    import time

    start = time.perf_counter()
    needed = requests_needed(100_000, 999, 99)
    assert needed is not None and needed > 10**8
    assert time.perf_counter() - start < 2.0
