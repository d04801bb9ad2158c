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

CONFIDENCE = 0.99


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function, modified Lentz's method
    (Press et al., *Numerical Recipes*, 3rd ed., sec. 6.4)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def _betai(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), as I_{1-p}(n-k, k+1): constant time for any n and k."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return min(1.0, max(0.0, _betai(n - k, k + 1, 1.0 - p)))


# Beyond this many requests, "would need N more" is no advice anyone can follow.
MAX_NEEDED = 10**10


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
        if hi > MAX_NEEDED:
            return None
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


# How a deployment that did not complete is said in a verdict, by its status (perseus.kinds.Status).
STOPPED = {"interrupted": "was interrupted", "failed": "failed", "running": "stopped without finishing"}


def judge(
    *,
    duration_s: float,
    requests: int,
    over_sla: int,
    sla_met: bool,
    percentile: float,
    min_duration_s: float,
    min_requests: int,
    status: str = "completed",
) -> Validity:
    """``status``: the deployment's; one that did not complete is never VALID, whatever it measured,
    because its schedule was not completed (the load it was asked to carry was never all offered)."""
    duration_ok = duration_s >= min_duration_s
    requests_ok = requests >= min_requests
    early_ok = early_stopping_passes(requests, over_sla, percentile)
    reasons, advice = [], []
    stopped = status != "completed"
    if stopped:
        reasons.append(f"the deployment {STOPPED.get(status, status)} before its schedule completed")
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
    valid = duration_ok and requests_ok and sla_met and early_ok and not stopped
    verdict = "VALID" if valid else "INVALID: " + "; ".join(reasons + advice)
    return Validity(valid, duration_ok, requests_ok, sla_met, early_ok, verdict)
