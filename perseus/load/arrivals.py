"""Arrival schedules: pure, seeded, drawn entirely before the run (as MLPerf LoadGen does).

Times are seconds relative to the measurement start; warm-up arrivals are negative.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from perseus.scenario import LoadSpec


def tenant_rng(seed: int, tenant: str) -> np.random.Generator:
    """One generator per (scenario seed, tenant name).

    Keyed by name, not position, so a tenant gets the same schedule in the shared deployment and in
    its solo baseline: the two are compared on identical arrivals.
    """
    return np.random.default_rng([seed, zlib.crc32(tenant.encode())])


def poisson(rate: float, start_s: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """A Poisson process on [start, start+length) conditioned on exactly round(rate*length) arrivals.

    Given N(T) = n, the arrival times of a Poisson process are n sorted uniform points on [0, T)
    (the order-statistic property; Ross, *Stochastic Processes*, thm 2.3.1). Conditioning makes every
    run issue exactly rate x duration requests, so throughput checks carry no count noise, while
    inter-arrival gaps stay exponential.
    """
    n = round(rate * length_s)
    return start_s + np.sort(rng.uniform(0.0, length_s, size=n))


def constant(rate: float, start_s: float, length_s: float, rng: np.random.Generator) -> np.ndarray:
    """Evenly spaced arrivals with a seeded phase, so tenants at the same rate do not fire in lockstep."""
    phase = rng.uniform(0.0, 1.0)
    # Every point start + (i + phase) / rate that falls inside [start, start + length).
    n = max(0, math.ceil(rate * length_s - phase))
    return start_s + (np.arange(n) + phase) / rate


GENERATORS = {"poisson": poisson, "constant": constant}


def schedule(load: LoadSpec, warmup_s: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Warm-up arrivals on [-warmup, 0) then measured arrivals on [0, duration), as one sorted array.

    Open-loop only; a closed loop has no schedule (each user sends when its last response arrives).
    """
    gen = GENERATORS[load.arrival]
    warm = gen(load.rate, -warmup_s, warmup_s, rng) if warmup_s > 0 else np.empty(0)
    measured = gen(load.rate, 0.0, duration_s, rng)
    return np.concatenate([warm, measured])
