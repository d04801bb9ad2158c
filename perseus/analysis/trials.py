"""Repeated trials: bootstrap confidence intervals across trials, and a check that trials agree.

With ``--repeat N`` each deployment runs N times. Between-trial spread (warm-up state, noisy
neighbours, thermal drift) is often larger than the sampling error inside one trial, so the
intervals come from resampling whole trials (percentile bootstrap, Efron & Tibshirani 1993, ch. 13).
With few trials (3-5) such intervals are rough; they are still honest about between-trial spread.

Each trial also carries a distribution-free interval for its own p99 (the order-statistic
interval, Conover 1999, sec. 3.2, normal approximation to the binomial ranks). When those
intervals do not all overlap, the trials disagree by more than sampling error allows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

BOOTSTRAP_RESAMPLES = 2000
Z95 = 1.959963984540054
STATS = ("throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms")


def quantile_interval(sorted_values: np.ndarray, q: float, z: float = Z95) -> tuple[float, float]:
    """Order-statistic 95% interval for the q-quantile of i.i.d. samples (values sorted ascending)."""
    n = len(sorted_values)
    if n == 0:
        return math.nan, math.nan
    half = z * math.sqrt(n * q * (1 - q))
    lo = max(0, math.floor(n * q - half) - 1)
    hi = min(n - 1, math.ceil(n * q + half))
    return float(sorted_values[lo]), float(sorted_values[hi])


def bootstrap_mean_interval(values: np.ndarray, seed: int = 0) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    if len(values) < 2 or not np.all(np.isfinite(values)):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    means = values[picks].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def trials_table(rows: pd.DataFrame, deployments: dict[str, dict]) -> pd.DataFrame:
    """One row per (base deployment, tenant) that ran two or more trials."""
    base_of = {name: meta.get("base", name) for name, meta in deployments.items()}
    frame = rows.assign(base=rows["deployment"].map(base_of))
    out = []
    for (base, tenant), group in frame.groupby(["base", "tenant"], sort=False):
        if len(group) < 2:
            continue
        row = {"deployment": base, "tenant": tenant, "trials": len(group)}
        for stat in STATS:
            values = group[stat].to_numpy(dtype=float)
            lo, hi = bootstrap_mean_interval(values)
            row.update({f"{stat}_mean": float(np.mean(values)), f"{stat}_ci_low": lo, f"{stat}_ci_high": hi})
        lows, highs = group["p99_ci_low_ms"].to_numpy(float), group["p99_ci_high_ms"].to_numpy(float)
        agree = bool(np.nanmax(lows) <= np.nanmin(highs)) if np.isfinite(lows).any() else True
        row["trials_agree"] = agree
        row["note"] = (
            "trials agree within their p99 intervals"
            if agree
            else "trials disagree: their p99 intervals do not overlap, so something changed between trials"
        )
        out.append(row)
    return pd.DataFrame(out)
