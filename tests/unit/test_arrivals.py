"""Arrival schedules: exact counts, bounds, seeding, and the shape of the gaps."""

from __future__ import annotations

import numpy as np
import pytest

from perseus.load import arrivals
from perseus.scenario import LoadSpec

GENS = ["poisson", "constant"]


def rng(seed: int = 1, tenant: str = "vision") -> np.random.Generator:
    return arrivals.tenant_rng(seed, tenant)


@pytest.mark.parametrize("kind", GENS)
@pytest.mark.parametrize(("rate", "start", "length"), [(25, 0.0, 4.0), (20, -1.0, 1.0), (7.5, 3.0, 2.0), (3, 0, 10)])
def test_exact_count_sorted_and_in_window(kind, rate, start, length):
    t = arrivals.GENERATORS[kind](rate, start, length, rng())
    assert len(t) == round(rate * length)
    assert np.all(np.diff(t) >= 0)
    assert t.min() >= start
    assert t.max() < start + length


@pytest.mark.parametrize("kind", GENS)
def test_rate_over_10k_arrivals(kind):
    rate, length = 200.0, 60.0  # 12,000 arrivals
    t = arrivals.GENERATORS[kind](rate, 0.0, length, rng())
    assert len(t) == 12_000
    measured_rate = (len(t) - 1) / (t[-1] - t[0])
    assert measured_rate == pytest.approx(rate, rel=0.01)
    # and the first and second halves carry the same load (no drift)
    halves = np.histogram(t, bins=2, range=(0, length))[0]
    assert halves[0] == pytest.approx(halves[1], rel=0.05)


@pytest.mark.parametrize("kind", GENS)
def test_seeding(kind):
    gen = arrivals.GENERATORS[kind]
    a = gen(10, 0, 50, rng(1, "vision"))
    assert np.array_equal(a, gen(10, 0, 50, rng(1, "vision")))
    assert not np.array_equal(a, gen(10, 0, 50, rng(2, "vision")))
    assert not np.array_equal(a, gen(10, 0, 50, rng(1, "series")))


def test_tenant_rng_keyed_by_name_not_order():
    a = rng(7, "series").random(5)
    rng(7, "vision").random(100)  # another tenant drawing first changes nothing
    assert np.array_equal(a, rng(7, "series").random(5))


def test_poisson_gaps_are_exponential():
    rate = 50.0
    t = arrivals.poisson(rate, 0.0, 400.0, rng(3, "gaps"))  # 20,000 arrivals
    gaps = np.diff(t)
    assert gaps.mean() == pytest.approx(1 / rate, rel=0.05)
    cv = gaps.std() / gaps.mean()
    assert cv == pytest.approx(1.0, rel=0.05)  # exponential: CV = 1 (constant: 0)
    # memoryless tail: P(gap > 2/rate) = e^-2
    assert np.mean(gaps > 2 / rate) == pytest.approx(np.exp(-2), rel=0.05)


def test_constant_gaps_are_equal():
    rate = 20.0
    t = arrivals.constant(rate, 0.0, 4.0, rng())
    gaps = np.diff(t)
    assert np.allclose(gaps, 1 / rate, rtol=0, atol=1e-12)
    assert 0.0 <= t[0] < 1 / rate  # seeded phase within the first gap


def test_constant_phase_differs_between_tenants():
    a = arrivals.constant(10, 0, 1, rng(1, "a"))
    b = arrivals.constant(10, 0, 1, rng(1, "b"))
    assert a[0] != b[0]


@pytest.mark.parametrize("kind", GENS)
def test_schedule_splits_warmup_and_measurement(kind):
    load = LoadSpec(arrival=kind, rate=25)
    s = arrivals.schedule(load, 2.0, 4.0, rng())
    warm, measured = s[s < 0], s[s >= 0]
    assert len(warm) == 50
    assert len(measured) == 100
    assert warm.min() >= -2.0
    assert measured.max() < 4.0
    assert np.all(np.diff(s) >= 0)


def test_schedule_without_warmup():
    s = arrivals.schedule(LoadSpec(arrival="poisson", rate=25), 0, 4.0, rng())
    assert len(s) == 100
    assert s.min() >= 0


def test_schedule_is_reproducible():
    load = LoadSpec(arrival="poisson", rate=25)
    assert np.array_equal(arrivals.schedule(load, 1, 4, rng()), arrivals.schedule(load, 1, 4, rng()))


def test_constant_stays_in_window_when_rate_times_length_is_fractional():
    # rate 3/s over 3.6 s: 10.8 arrivals on average; each window holds the points that fit, 10 or 11,
    # and none spills into the next window.
    for seed in range(20):
        s = arrivals.schedule(LoadSpec(arrival="constant", rate=3), 3.6, 3.6, rng(seed, "x"))
        warm, measured = s[s < 0], s[s >= 0]
        assert len(warm) in (10, 11) and len(measured) in (10, 11)
        assert warm.min() >= -3.6 and measured.max() < 3.6
