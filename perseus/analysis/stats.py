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
    """
    if len(latency_ms) == 0:
        return float("nan")
    lat = np.where(ok, latency_ms, np.inf)
    with np.errstate(invalid="ignore"):  # inf - inf while interpolating: handled below
        value = float(np.percentile(lat, percentile))
    # Interpolating towards a failure (inf) gives nan or inf: either way the percentile is a failure.
    return math.inf if math.isnan(value) else value


def sla_attainment(latency_ms: np.ndarray, ok: np.ndarray, sla_ms: float) -> float:
    """Fraction of requests that succeeded within ``sla_ms``."""
    if len(latency_ms) == 0:
        return float("nan")
    return float(np.mean(ok & (latency_ms <= sla_ms)))
