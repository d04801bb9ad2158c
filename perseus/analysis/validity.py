"""Is a measurement valid? The MLPerf LoadGen way, as one pure function returning data.

A (deployment, tenant) measurement is VALID when all hold:
- minimum duration met;
- minimum request count met;
- the SLA percentile's latency is within ``sla_ms``;
- early stopping: the number of requests over ``sla_ms`` is small enough that, at 99% confidence,
  the true fraction over the bound is within the percentile's allowance (a one-sided binomial test,
  as in LoadGen's early-stopping criterion).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.99


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed exactly in log space (no scipy needed)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    i = np.arange(k + 1, dtype=float)
    log_pmf = (
        math.lgamma(n + 1)
        - np.array([math.lgamma(x + 1) for x in i])
        - np.array([math.lgamma(n - x + 1) for x in i])
        + i * math.log(p)
        + (n - i) * math.log1p(-p)
    )
    top = log_pmf.max()
    return float(min(1.0, math.exp(top) * np.exp(log_pmf - top).sum()))


def early_stopping_passes(n: int, over: int, percentile: float, confidence: float = CONFIDENCE) -> bool:
    """True when ``over`` of ``n`` requests above the bound shows, at ``confidence``, that the true
    over-bound fraction is at most 1 - percentile/100.

    H0: the fraction is exactly the allowance a = 1 - percentile/100 (the worst that still passes
    fails the claim from above). Seeing ``over`` or fewer under H0 must be unlikely:
    P(Binomial(n, a) <= over) <= 1 - confidence.
    Worked by hand: p99 with none over needs 0.99^n <= 0.01, so n >= 459; p90 needs n >= 44.
    """
    allowance = 1.0 - percentile / 100.0
    return n > 0 and binom_cdf(over, n, allowance) <= 1.0 - confidence


def requests_needed(n: int, over: int, percentile: float, confidence: float = CONFIDENCE) -> int | None:
    """Smallest total count that would pass early stopping if requests keep the observed over-bound
    rate; None when that rate is already above the allowance (no count can pass)."""
    allowance = 1.0 - percentile / 100.0
    rate = over / n if n else 0.0
    if rate >= allowance:
        return None

    def passes(total: int) -> bool:
        return early_stopping_passes(total, math.floor(rate * total), percentile, confidence)

    hi = max(n, 1)
    while not passes(hi):
        hi *= 2
    lo = hi // 2 if hi > max(n, 1) else max(n, 1) - 1
    while hi - lo > 1:  # passes(hi) holds; find the smallest such total (the test is monotone in practice)
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class Validity:
    valid: bool
    duration_ok: bool
    requests_ok: bool
    sla_ok: bool
    early_stopping_ok: bool
    verdict: str  # "VALID" or "INVALID: reasons; recommendation"


def judge(
    *,
    duration_s: float,
    requests: int,
    over_sla: int,
    sla_met: bool,
    percentile: float,
    min_duration_s: float,
    min_requests: int,
) -> Validity:
    duration_ok = duration_s >= min_duration_s
    requests_ok = requests >= min_requests
    early_ok = early_stopping_passes(requests, over_sla, percentile)
    reasons, advice = [], []
    if not duration_ok:
        reasons.append(f"measured {duration_s:.3g} s < minimum {min_duration_s:g} s")
    if not requests_ok:
        reasons.append(f"{requests} requests < minimum {min_requests}")
    if not sla_met:
        reasons.append(f"p{percentile:g} over the SLA")
    if not early_ok:
        needed = requests_needed(requests, over_sla, percentile)
        if needed is None:
            share = over_sla / requests if requests else 1.0
            reasons.append(f"{share:.2%} of requests over the SLA, allowance {1 - percentile / 100:.2%}")
        else:
            reasons.append("too few requests for the percentile at 99% confidence")
            advice.append(f"would need at least {needed - requests} more requests ({needed} in all)")
    if not requests_ok:
        advice.append(f"run at least {min_requests - requests} more requests")
    valid = duration_ok and requests_ok and sla_met and early_ok
    verdict = "VALID" if valid else "INVALID: " + "; ".join(reasons + advice)
    return Validity(valid, duration_ok, requests_ok, sla_met, early_ok, verdict)
