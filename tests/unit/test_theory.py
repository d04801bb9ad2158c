"""M/D/1 ground truth: Lindley recursion against Pollaczek-Khinchine and a direct loop."""

import numpy as np
import pytest

from perseus.calibration.theory import lindley_waits, md1_percentiles, md1_sojourn, pk_mean_wait


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


def test_percentiles_are_ordered_and_at_least_the_service_time():
    p = md1_percentiles(40, 0.02, (50, 90, 95, 99))
    assert 20.0 <= p[50] < p[90] < p[95] < p[99]


def test_unstable_queue_is_refused():
    with pytest.raises(ValueError, match="no steady state"):
        md1_sojourn(100, 0.02)
