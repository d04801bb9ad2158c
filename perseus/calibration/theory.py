"""M/D/1 ground truth: Poisson arrivals at rate lambda, one server, deterministic service time D.

Exact distribution. The waiting time W (time in queue) of the stationary M/D/1 queue has the
closed form of Erlang and Crommelin, with rho = lambda * D < 1:

    P(W <= t) = (1 - rho) * sum_{k=0}^{floor(t/D)} [lambda (kD - t)]^k / k! * exp(-lambda (kD - t))

(Erlang 1909, "The theory of probabilities and telephone conversations", Nyt Tidsskrift for
Matematik B 20; Crommelin 1932, "Delay probability formulas when the holding times are constant",
P.O. Electr. Engr. J. 25; the history is told by Janssen & van Leeuwaarden 2008, Statistica
Neerlandica 62(3), 299-313). The sojourn time a client sees is W + D.

Why decimal arithmetic. The terms alternate in sign and their size reaches about
exp(2 * rho * t / D), while the sum stays below 1. In double precision the sum can therefore lose
up to 2 * rho * (t/D) / ln(10) of its ~16 digits: 7 at the p99 of rho 0.8 (t = 10.4 D), and all of
them at the p99.9 of rho 0.95 (t = 67.6 D, terms near e^128), where a float sum gives -3e17.
Here the sum is evaluated with Python's ``decimal`` at a precision of that many digits plus
``GUARD_DIGITS``, so the cancellation eats only guard digits and the result is correct to double
precision for any t (tests check it against the Pollaczek-Khinchine and Takacs moments and against
the exponential tail).
Percentiles come from bisection on this CDF.

Simulation. ``md1_sojourn`` keeps the seeded Monte-Carlo simulation by Lindley's recursion
W[n+1] = max(0, W[n] + S - A[n+1]) (Lindley 1952), where A are exponential inter-arrival gaps. Its
solution is W[n] = C[n] - min(C[0..n]) with C = cumsum(S - A) and C[0] = 0, which numpy evaluates
without a Python loop. It is an independent cross-check of the exact distribution (see the tests).

Moments, for checks: Pollaczek-Khinchine E[W] = rho D / (2 (1 - rho)), and Takacs' second moment
E[W^2] = 2 E[W]^2 + lambda E[S^3] / (3 (1 - rho)) (Takacs 1962, Introduction to the Theory of Queues),
with E[S^3] = D^3 here.
"""

from __future__ import annotations

import decimal
import math
from decimal import Decimal

import numpy as np

# Simulation length: at rho 0.8 the simulated p99 then has a Monte-Carlo sd of about 1% (20 seeds).
THEORY_CUSTOMERS = 2_000_000
BURN_IN = 10_000  # simulation: customers dropped so the queue starts in steady state, not empty
# Decimal digits kept beyond the cancellation bound 2*rho*t/D / ln(10): 17 for a double, the rest
# for the rounding of up to a few hundred terms.
GUARD_DIGITS = 30
# Bisection stops when the bracket is this small relative to the answer: far below any measurement.
QUANTILE_REL_TOL = 1e-12


def _check_stable(rate: float, service_s: float) -> float:
    rho = rate * service_s
    if rho >= 1.0:
        raise ValueError(f"utilisation {rho:.3f} >= 1: the queue has no steady state")
    if rate < 0 or service_s <= 0:
        raise ValueError(f"need rate >= 0 and service time > 0, got {rate} and {service_s}")
    return rho


def md1_wait_cdf(t_s: float, rate: float, service_s: float) -> float:
    """Exact P(W <= t_s) for the stationary M/D/1 waiting time (Erlang 1909 / Crommelin 1932).

    W has an atom of mass 1 - rho at 0 (an arrival that finds the server idle). Evaluated in decimal
    arithmetic with enough digits that the alternating sum loses nothing (see the module docstring).
    """
    rho = _check_stable(rate, service_s)
    if t_s < 0:
        return 0.0
    if math.isinf(t_s):
        return 1.0
    lam, d, t = Decimal(rate), Decimal(service_s), Decimal(t_s)  # exact: floats are dyadic rationals
    # The largest |term| is below exp(2 * rho * t / D); that many decimal digits cancel.
    digits = GUARD_DIGITS + math.ceil(2.0 * rho * (t_s / service_s) / math.log(10))
    with decimal.localcontext() as ctx:
        ctx.prec = digits
        m = int((t / d).to_integral_value(rounding=decimal.ROUND_FLOOR))
        # exp(-lambda (kD - t)) = exp(lambda t) * exp(-lambda D)^k: two exponentials for all terms.
        grow = (lam * t).exp()
        shrink = (-lam * d).exp()
        total = Decimal(1)  # the k = 0 term (written out: decimal refuses 0 ** 0 at t = 0)
        factorial = Decimal(1)
        decay = Decimal(1)
        for k in range(1, m + 1):
            factorial *= k
            decay *= shrink
            total += (lam * (k * d - t)) ** k / factorial * decay
        value = (1 - lam * d) * total * grow
    return min(1.0, max(0.0, float(value)))


def md1_sojourn_cdf(t_s: float, rate: float, service_s: float) -> float:
    """Exact P(W + D <= t_s): the sojourn (response) time a client sees."""
    return md1_wait_cdf(t_s - service_s, rate, service_s)


def md1_wait_quantile(p: float, rate: float, service_s: float) -> float:
    """The p-quantile (0 <= p < 1) of the exact M/D/1 waiting time, in seconds: inf{t : P(W <= t) >= p}.

    0 when p <= 1 - rho (the atom at 0); otherwise the root of the continuous, increasing CDF, found
    by bisection to a relative width of ``QUANTILE_REL_TOL``.
    """
    rho = _check_stable(rate, service_s)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"quantile level {p} outside [0, 1)")
    if p <= 1.0 - rho:
        return 0.0
    lo, hi = 0.0, service_s
    while md1_wait_cdf(hi, rate, service_s) < p:  # bracket: doubling until the CDF passes p
        lo, hi = hi, 2.0 * hi
    while hi - lo > QUANTILE_REL_TOL * hi:
        mid = 0.5 * (lo + hi)
        if md1_wait_cdf(mid, rate, service_s) < p:
            lo = mid
        else:
            hi = mid
    return hi


def lindley_waits(service_s: float, gaps_s: np.ndarray) -> np.ndarray:
    """Waiting times for a deterministic service and the given inter-arrival gaps (first customer waits 0)."""
    steps = service_s - gaps_s[1:]
    c = np.concatenate([[0.0], np.cumsum(steps)])
    return c - np.minimum.accumulate(c)


def md1_sojourn(rate: float, service_s: float, customers: int = THEORY_CUSTOMERS, seed: int = 0) -> np.ndarray:
    """Simulated M/D/1 sojourn times (seconds), after a burn-in: a seeded Monte-Carlo cross-check."""
    _check_stable(rate, service_s)
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, size=customers + BURN_IN)
    return (lindley_waits(service_s, gaps) + service_s)[BURN_IN:]


def pk_mean_wait(rate: float, service_s: float) -> float:
    """Pollaczek-Khinchine mean wait for M/D/1: rho * S / (2 * (1 - rho)), since E[S^2] = S^2."""
    rho = rate * service_s
    return rho * service_s / (2.0 * (1.0 - rho))


def md1_second_moment_wait(rate: float, service_s: float) -> float:
    """E[W^2] for M/D/1 (Takacs 1962): 2 E[W]^2 + lambda D^3 / (3 (1 - rho)), since E[S^3] = D^3."""
    rho = rate * service_s
    return 2.0 * pk_mean_wait(rate, service_s) ** 2 + rate * service_s**3 / (3.0 * (1.0 - rho))


def md1_percentiles(rate: float, service_s: float, qs, seed: int = 0) -> dict[float, float]:
    """Exact sojourn-time percentiles in ms: W's quantile from the Erlang/Crommelin CDF, plus D.

    ``seed`` is ignored (nothing is random any more); it stays so that callers passing it still work.
    """
    del seed
    return {q: (md1_wait_quantile(q / 100.0, rate, service_s) + service_s) * 1e3 for q in qs}
