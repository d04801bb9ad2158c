"""sla_latency at exact indices and next to failures (failures count as infinitely late)."""

import math

import numpy as np
import pytest

from perseus.analysis.stats import sla_latency


def one_failure_as_the_largest(n=101):
    lat = np.arange(1.0, n + 1.0)
    ok = np.ones(n, bool)
    ok[-1] = False
    return lat, ok


def test_exact_index_next_to_a_failure_is_the_real_latency():
    # n = 101: p99's virtual index is exactly 99, the 100th value, a success. numpy's lerp computes
    # x[99] + 0 * (inf - x[99]) = nan there; the SLA latency must be the latency itself.
    lat, ok = one_failure_as_the_largest()
    assert sla_latency(lat, ok, 99) == 100.0


def test_interpolating_between_a_success_and_a_failure_is_infinitely_late():
    lat, ok = one_failure_as_the_largest()
    assert sla_latency(lat, ok, 99.5) == math.inf  # a fraction of the way to infinitely late
    assert sla_latency(lat, ok, 100) == math.inf  # exactly on the failure


def test_failures_below_the_index_do_not_leak_into_finite_neighbours():
    lat = np.arange(1.0, 201.0)
    ok = np.ones(200, bool)
    ok[:3] = False  # failures sort last, whatever their recorded latency
    expected = np.percentile(np.sort(lat[ok]).tolist() + [math.inf] * 3, 50)
    assert sla_latency(lat, ok, 50) == expected


def test_finite_data_give_numpys_percentile_bit_for_bit():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 100, 101, 1000):
        lat = rng.lognormal(3.0, 0.5, size=n)
        for p in (0, 50, 90, 95, 99, 99.9, 100):
            assert sla_latency(lat, np.ones(n, bool), p) == np.percentile(lat, p)


def test_random_failures_agree_with_the_definition():
    # Definition: sorted values with failures as +inf; exact index -> that value; otherwise linear
    # interpolation, which is inf as soon as the upper neighbour is a failure.
    rng = np.random.default_rng(6)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        lat, ok = rng.uniform(1, 100, size=n), rng.random(n) > 0.2
        p = float(rng.choice([50, 90, 95, 99, 100, rng.uniform(0, 100)]))
        x = np.sort(np.where(ok, lat, np.inf))
        h = (n - 1) * (p / 100)
        j = math.floor(h)
        want = x[j] if h == j else (math.inf if math.isinf(x[j + 1]) else x[j] + (h - j) * (x[j + 1] - x[j]))
        assert sla_latency(lat, ok, p) == pytest.approx(want, rel=1e-12)


def test_empty_and_out_of_range():
    assert math.isnan(sla_latency(np.array([]), np.array([], bool), 99))
    with pytest.raises(ValueError, match="outside"):
        sla_latency(np.array([1.0]), np.array([True]), 101)
