"""Repeated trials: Student-t intervals across trials, exact order-statistic p99 intervals, agreement.

Across trials. With ``--repeat N`` each deployment runs N times. Between-trial spread (warm-up
state, noisy neighbours, thermal drift) is often larger than the sampling error inside one trial, so
each statistic (throughput, a percentile) is treated as one number per trial and the interval is
Student's t on those N numbers: mean +- t(0.975, N-1) * s / sqrt(N). It covers the *mean of that
per-trial statistic over trials run the same way*, e.g. the expected p99 of one trial. For a
percentile over thousands of requests that is the latency distribution's own percentile up to the
estimator's O(1/n) bias. That bias does not shrink with more trials, so with short trials it shows:
with 5 trials of 1,000 lognormal latencies the expected trial p99 is 0.84% low, and the interval
covers it 94.3% of the time but the distribution's p99 only 92.8%.

The t interval is exact when per-trial values are normal, at any N >= 2, and per-trial means and
percentiles over many requests are close to normal (central limit theorem; asymptotic normality of
sample quantiles). It replaces a percentile bootstrap over trials, which with 3 trials covered about
75%: resampled means cannot leave the range of the 3 values, and that range holds the mean of a
symmetric distribution only 75% of the time (1 - 2 * 0.5^3). The tests measure the t interval's
coverage by simulation (2, 3 and 5 trials of normal values; 3 and 5 trials of lognormal p99s).

Within a trial. Each row carries a distribution-free interval for its own p99: two order
statistics X(l) <= X(u) of the n successful latencies. For a continuous distribution,
P(X(l) <= x_q <= X(u)) = P(l <= B < u) with B ~ Binomial(n, q), the number of observations below
x_q (David & Nagaraja 2003, Order Statistics, sec. 7.1; Hahn & Meeker 1991, Statistical Intervals,
sec. 5.2; Conover 1999, sec. 3.2). The ranks here are exact, from that binomial, never from a normal
approximation and never clamped: the old approximate ranks were clamped to the maximum and covered
about 62% at n = 100. Among all pairs with P(l <= B < u) >= 95%, the narrowest in ranks is taken,
and among equally narrow ones the pair whose coverage is closest to 95% from above; so the
coverage is never below 95%, and above it only by the binomial's discreteness. For p99 it is
95.0% to 97.3% for n from 299 to 3,000 (over 97% only for 18 values of n, near 450, where P(B = n)
alone is 1%), median 95.4%, and within 0.1 point of 95% from n = 100,000. Ties in the data only
make the closed interval cover more often. When no pair reaches 95%, i.e. when q^n + (1-q)^n > 5%
(p99: fewer than 299 values), the interval is NaN: no order statistics support a two-sided 95%
interval, and an endpoint is not invented.

Agreement. When the trials' p99 intervals do not all overlap, the trials disagree by more than
sampling error allows. Trials without a p99 interval (too few requests) are left out of that check.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CONFIDENCE = 0.95
STATS = ("throughput_rps", "p50_ms", "p90_ms", "p95_ms", "p99_ms")
MIN_TRIALS = 2  # the t interval needs a sample standard deviation: two trials at least
AGREEMENT_QUANTILE = 0.99
# Binomial mass outside mean +- this many sd (+ a margin for small n) is below 1e-20, so the rank
# search can ignore it: it keeps the work O(sqrt(n)) for runs of millions of requests.
BINOMIAL_WINDOW_SD = 12.0
# Bisection on the t CDF stops at this absolute width: far below the 4 digits tables print.
T_QUANTILE_TOL = 1e-12


# --- Student's t ----------------------------------------------------------------------------------


def t_two_sided_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer ``df`` (Abramowitz & Stegun 1964, 26.7.3 and 26.7.4).

    With theta = atan(t / sqrt(df)), the mass is a finite series in cos(theta) whose terms are all
    positive, so it is accurate to rounding error (no cancellation, no special functions).
    """
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    s, c2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:  # sin(theta) * (1 + 1/2 c^2 + 1*3/(2*4) c^4 + ... up to c^(df-2))
        term = total = 1.0
        for j in range(1, df // 2):
            term *= (2 * j - 1) / (2 * j) * c2
            total += term
        return s * total
    # odd: 2/pi * (theta + sin(theta) * (c + 2/3 c^3 + 2*4/(3*5) c^5 + ... up to c^(df-2)))
    c = math.sqrt(c2)
    term = total = c if df > 1 else 0.0
    for j in range(1, (df - 1) // 2):
        term *= (2 * j) / (2 * j + 1) * c2
        total += term
    return 2.0 / math.pi * (theta + s * total)


def t_critical(df: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value: the t with P(|T| <= t) = ``confidence`` (12.706 for df 1 at 95%).

    Inverts ``t_two_sided_mass`` by bisection; the tests check it against printed tables.
    """
    lo, hi = 0.0, 1.0
    while t_two_sided_mass(hi, df) < confidence:
        lo, hi = hi, 2.0 * hi
    while hi - lo > T_QUANTILE_TOL:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_two_sided_mass(mid, df) < confidence else (lo, mid)
    return 0.5 * (lo + hi)


def t_mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t interval for the mean of the distribution the per-trial ``values`` are drawn from.

    NaN when there are fewer than ``MIN_TRIALS`` values or any is missing or infinite: a trial
    without the statistic cannot be dropped silently, since that would favour the trials that worked.
    """
    values = np.asarray(values, dtype=float)
    k = len(values)
    if k < MIN_TRIALS or not np.all(np.isfinite(values)):
        return math.nan, math.nan
    mean = float(np.mean(values))
    half = t_critical(k - 1, confidence) * float(np.std(values, ddof=1)) / math.sqrt(k)
    return mean - half, mean + half


# --- Order-statistic interval for a quantile ------------------------------------------------------


def _binomial_window(n: int, q: float) -> tuple[int, np.ndarray]:
    """(first k, P(B = k) for k in a window holding all but ~1e-20 of Binomial(n, q))."""
    sd = math.sqrt(n * q * (1 - q))
    first = max(0, math.floor(n * q - BINOMIAL_WINDOW_SD * sd) - 10)
    last = min(n, math.ceil(n * q + BINOMIAL_WINDOW_SD * sd) + 10)
    k = np.arange(first, last + 1)
    log_choose = math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
    return first, np.exp(log_choose + k * math.log(q) + (n - k) * math.log1p(-q))


def quantile_interval_min_count(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest values for which any two order statistics cover the q-quantile with ``confidence``.

    The widest pair, minimum and maximum, covers with 1 - q^n - (1-q)^n, which grows with n.
    For p99 at 95% that is 299.
    """
    n = 2
    while q**n + (1 - q) ** n > 1 - confidence:
        n += 1
    return n


def quantile_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int, int, float] | None:
    """1-based ranks (l, u) of the order-statistic interval, and its exact coverage P(l <= B < u).

    The narrowest pair in ranks with coverage >= ``confidence``; among equally narrow pairs, the one
    with the smallest coverage. None when no pair reaches ``confidence`` (see the module docstring).
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile level {q} outside (0, 1)")
    if n < 2:
        return None
    first, pmf = _binomial_window(n, q)
    # below[j] = P(B < first + j); coverage(l, u) = below[u - first] - below[l - first].
    below = np.concatenate([[0.0], np.cumsum(pmf)])
    ranks = np.arange(first, first + len(below))
    lows = np.flatnonzero((ranks >= 1) & (ranks <= n - 1))
    # For each lower rank, the smallest upper rank whose coverage reaches the target.
    ups = np.searchsorted(below, below[lows] + confidence, side="left")
    ups = np.maximum(ups, lows + 1)
    fits = ups < len(below)
    lows, ups = lows[fits], ups[fits]
    fits = ranks[ups] <= n
    lows, ups = lows[fits], ups[fits]
    if len(lows) == 0:
        return None
    coverage = below[ups] - below[lows]
    best = np.lexsort((coverage, ups - lows))[0]
    return int(ranks[lows[best]]), int(ranks[ups[best]]), float(coverage[best])


def quantile_interval(sorted_values: np.ndarray, q: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval for the q-quantile of i.i.d. samples (values sorted ascending).

    Exact binomial ranks (``quantile_ranks``); NaN when there are too few values for a two-sided
    interval at ``confidence`` (``quantile_interval_min_count``: 299 for p99 at 95%).
    """
    ranks = quantile_ranks(len(sorted_values), q, confidence)
    if ranks is None:
        return math.nan, math.nan
    lo, hi, _ = ranks
    return float(sorted_values[lo - 1]), float(sorted_values[hi - 1])


# --- The table ------------------------------------------------------------------------------------


def agreement(lows: np.ndarray, highs: np.ndarray) -> tuple[bool, str]:
    """Whether the trials' p99 intervals overlap, and the note that says so (or why it was not checked)."""
    have = np.isfinite(lows) & np.isfinite(highs)
    needed = quantile_interval_min_count(AGREEMENT_QUANTILE)
    if have.sum() < 2:
        return True, (
            f"agreement not checked: fewer than two trials have a p99 interval "
            f"(each needs at least {needed} successful requests)"
        )
    agree = bool(np.max(lows[have]) <= np.min(highs[have]))
    scope = "" if have.all() else f" ({int(have.sum())} of {len(have)} trials have a p99 interval)"
    if agree:
        return True, f"trials agree within their p99 intervals{scope}"
    return False, f"trials disagree: their p99 intervals do not overlap, so something changed between trials{scope}"


def trials_table(rows: pd.DataFrame, deployments: dict[str, dict]) -> pd.DataFrame:
    """One row per (base deployment, tenant) that ran two or more trials: t intervals and agreement."""
    base_of = {name: meta.get("base", name) for name, meta in deployments.items()}
    frame = rows.assign(base=rows["deployment"].map(base_of))
    out = []
    for (base, tenant), group in frame.groupby(["base", "tenant"], sort=False):
        if len(group) < MIN_TRIALS:
            continue
        row = {"deployment": base, "tenant": tenant, "trials": len(group)}
        for stat in STATS:
            values = group[stat].to_numpy(dtype=float)
            lo, hi = t_mean_interval(values)
            row.update({f"{stat}_mean": float(np.mean(values)), f"{stat}_ci_low": lo, f"{stat}_ci_high": hi})
        agree, note = agreement(group["p99_ci_low_ms"].to_numpy(float), group["p99_ci_high_ms"].to_numpy(float))
        row["trials_agree"] = agree
        row["note"] = note
        out.append(row)
    return pd.DataFrame(out)
