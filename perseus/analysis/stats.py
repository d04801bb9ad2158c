"""Exact percentiles from raw records.

Percentiles use numpy's default ``linear`` method (type 7 of Hyndman & Fan 1996): the same number
``numpy.percentile(x, q)`` gives. Raw records are kept precisely so that no bucketing is involved.
"""

from __future__ import annotations

import math

import numpy as np

PERCENTILES = (50, 90, 95, 99)


def percentiles(values: np.ndarray, qs=PERCENTILES) -> dict[int, float]:
    if len(values) == 0:
        return {q: float("nan") for q in qs}
    out = np.percentile(values, qs)
    return {q: float(v) for q, v in zip(qs, out, strict=True)}


def sla_latency(latency_ms: np.ndarray, ok: np.ndarray, percentile: float) -> float:
    """The SLA percentile of user-perceived latency, failed requests counted as infinitely late.

    A failed request never met its deadline, so it must not improve the tail by being dropped.

    Same ``linear`` method as ``percentiles``: virtual index h = (n - 1) * p / 100 into the sorted
    values, interpolated between its two neighbours. numpy computes a + (b - a) * gamma, which with
    b = inf is inf * 0 = nan even when gamma = 0, i.e. when h lands exactly on a finite value (n = 101,
    p99, one failure: h = 99 is the 100th latency, a real one). So the cases are taken apart here:
    an exact index returns that order statistic (inf only if it is a failure), interpolation towards
    a failure is inf (a fraction of the way to infinitely late is still infinitely late), and two
    finite neighbours are numpy's own result, bit for bit.
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile {percentile} outside [0, 100]")
    n = len(latency_ms)
    if n == 0:
        return float("nan")
    lat = np.sort(np.where(ok, latency_ms, np.inf))
    h = (n - 1) * (percentile / 100)  # numpy's virtual index for "linear", evaluated the same way
    below = math.floor(h)
    if h == below:
        return float(lat[below])
    if math.isinf(lat[below + 1]):
        return math.inf
    return float(np.percentile(lat, percentile))


def sla_attainment(latency_ms: np.ndarray, ok: np.ndarray, sla_ms: float) -> float:
    """Fraction of requests that succeeded within ``sla_ms``."""
    if len(latency_ms) == 0:
        return float("nan")
    return float(np.mean(ok & (latency_ms <= sla_ms)))
