"""Arrival schedules: pure, seeded, drawn entirely before the run (as MLPerf LoadGen does).

Times are seconds relative to the measurement start; warm-up arrivals are negative.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np

from perseus.scenario import LoadSpec
from perseus.traces import read_azure_counts, read_timestamps


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


def piecewise_poisson(segments: list[tuple[float, float, float]], rng: np.random.Generator) -> np.ndarray:
    """Poisson arrivals whose rate is constant on each (start, end, rate) segment.

    Each segment gets a seeded count with mean rate x length (stochastic rounding keeps the mean
    exact even for short segments), placed as sorted uniforms (the order-statistic property again).
    """
    out = []
    for start, end, rate in segments:
        mean = rate * (end - start)
        n = int(mean) + int(rng.uniform() < mean - int(mean))
        out.append(start + np.sort(rng.uniform(0.0, end - start, size=n)))
    return np.sort(np.concatenate(out)) if out else np.empty(0)


def step_segments(steps, start_s: float, end_s: float) -> list[tuple[float, float, float]]:
    """Levels held in turn from t=0, repeating; warm-up (t<0) runs at the first level."""
    segments = [(start_s, 0.0, steps[0][0])] if start_s < 0 else []
    t, i = 0.0, 0
    while t < end_s:
        rate, hold = steps[i % len(steps)]
        segments.append((t, min(t + hold, end_s), rate))
        t, i = t + hold, i + 1
    return segments


def spike_segments(load: LoadSpec, start_s: float, end_s: float) -> list[tuple[float, float, float]]:
    a, b = load.spike_at_s, load.spike_at_s + load.spike_s
    cuts = sorted({start_s, end_s, *(x for x in (a, b) if start_s < x < end_s)})
    return [(lo, hi, load.spike_rate if a <= lo < b else load.rate) for lo, hi in itertools.pairwise(cuts)]


def azure_segments(counts: np.ndarray, minute_s: float, mean_rate: float, start_s: float, end_s: float):
    """Minute k of the trace plays over [start + k*minute_s, ...), looping, scaled to ``mean_rate``."""
    rates = counts / counts.mean() * mean_rate
    segments, t, k = [], start_s, 0
    while t < end_s:
        segments.append((t, min(t + minute_s, end_s), float(rates[k % len(rates)])))
        t, k = t + minute_s, k + 1
    return segments


def replay_timestamps(times: np.ndarray, mean_rate: float, start_s: float, end_s: float) -> np.ndarray:
    """The trace's own arrival times, stretched so their mean rate is ``mean_rate``, looped to fill."""
    span = times[-1]
    scale = (len(times) - 1) / span / mean_rate  # original rate / target rate
    scaled = times * scale
    period = scaled[-1] + 1.0 / mean_rate  # the loop keeps the mean gap across the seam
    loops = int(np.ceil((end_s - start_s) / period)) + 1
    all_times = (scaled[None, :] + period * np.arange(loops)[:, None]).ravel() + start_s
    return all_times[all_times < end_s]


GENERATORS = {"poisson": poisson, "constant": constant}


def schedule(load: LoadSpec, warmup_s: float, duration_s: float, rng: np.random.Generator) -> np.ndarray:
    """Warm-up arrivals on [-warmup, 0) then measured arrivals on [0, duration), as one sorted array.

    Open-loop only; a closed loop has no schedule (each user sends when its last response arrives).
    """
    kind = load.arrival
    if kind in GENERATORS:
        gen = GENERATORS[kind]
        warm = gen(load.rate, -warmup_s, warmup_s, rng) if warmup_s > 0 else np.empty(0)
        return np.concatenate([warm, gen(load.rate, 0.0, duration_s, rng)])
    if kind == "step":
        return piecewise_poisson(step_segments(load.steps, -warmup_s, duration_s), rng)
    if kind == "ramp":
        warm = [(-warmup_s, 0.0, load.rate)] if warmup_s > 0 else []
        return piecewise_poisson(warm + load.ramp_levels(duration_s), rng)
    if kind == "spike":
        return piecewise_poisson(spike_segments(load, -warmup_s, duration_s), rng)
    if kind == "trace":
        if load.trace_format == "azure":
            counts = read_azure_counts(load.trace)
            return piecewise_poisson(azure_segments(counts, load.trace_minute_s, load.rate, -warmup_s, duration_s), rng)
        return replay_timestamps(read_timestamps(load.trace), load.rate, -warmup_s, duration_s)
    raise ValueError(f"arrival '{kind}' has no schedule")
