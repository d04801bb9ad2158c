"""Bracketing + bisection on synthetic monotone capacity functions."""

import pytest

from perseus.analysis.bracket import MIN_SCALE, find_capacity


@pytest.mark.parametrize("true_capacity", [0.07, 0.6, 1.0, 1.37, 5.2, 30.0])
def test_converges_within_precision_below_the_true_capacity(true_capacity):
    result = find_capacity(lambda k: k <= true_capacity, precision=0.05)
    assert result.converged
    assert result.capacity <= true_capacity < result.upper
    assert (result.upper - result.capacity) / result.capacity <= 0.05
    # every passing probe is below the truth, every failing one above
    assert all((k <= true_capacity) == ok for k, ok in result.probes)


def test_probe_count_is_frugal():
    result = find_capacity(lambda k: k <= 3.3, precision=0.1)
    assert len(result.probes) <= 8


def test_nothing_passes():
    result = find_capacity(lambda k: False, max_probes=20)
    assert result.capacity is None
    assert result.upper == MIN_SCALE


def test_probe_budget_is_respected():
    calls = []
    find_capacity(lambda k: calls.append(k) or k < 1e9, max_probes=5)
    assert len(calls) == 5
