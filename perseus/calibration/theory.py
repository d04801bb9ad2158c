"""M/D/1 ground truth: Poisson arrivals, one server, deterministic service time.

The waiting time follows Lindley's recursion W[n+1] = max(0, W[n] + S - A[n+1]) (Lindley 1952),
where A are exponential inter-arrival gaps. Its solution is W[n] = C[n] - min(C[0..n]) with
C = cumsum(S - A) and C[0] = 0, which numpy evaluates without a Python loop. The sojourn time
(what a client sees) is W + S. The mean waiting time is checked against Pollaczek-Khinchine.
"""

from __future__ import annotations

import numpy as np

THEORY_CUSTOMERS = 2_000_000  # p99 of M/D/1 at rho 0.8 settles to <0.5% at this length
BURN_IN = 10_000  # customers dropped so the queue starts in steady state, not empty


def lindley_waits(service_s: float, gaps_s: np.ndarray) -> np.ndarray:
    """Waiting times for a deterministic service and the given inter-arrival gaps (first customer waits 0)."""
    steps = service_s - gaps_s[1:]
    c = np.concatenate([[0.0], np.cumsum(steps)])
    return c - np.minimum.accumulate(c)


def md1_sojourn(rate: float, service_s: float, customers: int = THEORY_CUSTOMERS, seed: int = 0) -> np.ndarray:
    """Simulated M/D/1 sojourn times (seconds), after a burn-in."""
    if rate * service_s >= 1.0:
        raise ValueError(f"utilisation {rate * service_s:.3f} >= 1: the queue has no steady state")
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=customers + BURN_IN)
    return (lindley_waits(service_s, gaps) + service_s)[BURN_IN:]


def pk_mean_wait(rate: float, service_s: float) -> float:
    """Pollaczek-Khinchine mean wait for M/D/1: rho * S / (2 * (1 - rho)), since E[S^2] = S^2."""
    rho = rate * service_s
    return rho * service_s / (2.0 * (1.0 - rho))


def md1_percentiles(rate: float, service_s: float, qs, seed: int = 0) -> dict[float, float]:
    """Sojourn-time percentiles in ms."""
    sojourn = md1_sojourn(rate, service_s, seed=seed)
    return {q: float(v) * 1e3 for q, v in zip(qs, np.percentile(sojourn, qs), strict=True)}
