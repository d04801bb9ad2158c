"""Repeated trials: exact order-statistic intervals, Student-t intervals across trials, agreement, plan.

The coverage tests simulate thousands of seeded data sets and check that each interval covers what
its docstring says it covers, 93-97% of the time (target 95%).
"""

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from perseus.analysis.trials import (
    quantile_interval,
    quantile_interval_min_count,
    quantile_ranks,
    t_critical,
    t_mean_interval,
    t_two_sided_mass,
    trials_table,
)
from perseus.plan import plan
from perseus.scenario import parse

DATA_SETS = 4000  # standard error of a 95% coverage estimate: 0.34 points
trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy 2 renamed it


def within_sampling_error(hits: float, expected: float, sets: int = DATA_SETS) -> bool:
    return abs(hits - expected) <= 4 * math.sqrt(expected * (1 - expected) / sets)


# --- order-statistic interval ---------------------------------------------------------------------


@pytest.mark.parametrize("n", [300, 1000, 2000])
def test_p99_interval_covers_the_true_p99_as_often_as_the_binomial_says(n):
    rng = np.random.default_rng(n)
    true_p99 = -math.log(0.01)  # exponential(1); the interval is distribution-free
    lo_rank, hi_rank, exact = quantile_ranks(n, 0.99)
    samples = np.sort(rng.exponential(size=(DATA_SETS, n)), axis=1)
    hits = float(np.mean((samples[:, lo_rank - 1] <= true_p99) & (true_p99 <= samples[:, hi_rank - 1])))
    assert 0.95 <= exact <= 0.97
    assert 0.93 <= hits <= 0.97
    assert within_sampling_error(hits, exact)
    lo, hi = quantile_interval(samples[0], 0.99)
    assert (lo, hi) == (samples[0, lo_rank - 1], samples[0, hi_rank - 1])


def test_exact_coverage_is_never_below_95_percent_and_as_close_as_discreteness_allows():
    coverages = np.array([quantile_ranks(n, 0.99)[2] for n in range(299, 3001)])
    assert coverages.min() >= 0.95
    # The binomial's steps allow up to 97.3% near n = 450 (P(B = n) alone is 1%); median 95.4%.
    assert coverages.max() < 0.973 and np.median(coverages) < 0.957


def test_too_few_values_give_no_interval_rather_than_a_clamped_one():
    # p99 at 95% needs q^n + (1-q)^n <= 5%: 299 values. The old clamped interval covered ~63% at 100.
    assert quantile_interval_min_count(0.99) == 299
    assert quantile_ranks(298, 0.99) is None
    assert all(math.isnan(v) for v in quantile_interval(np.arange(298.0), 0.99))
    assert all(math.isnan(v) for v in quantile_interval(np.arange(100.0), 0.99))
    assert all(math.isnan(v) for v in quantile_interval(np.array([]), 0.99))
    lo, hi = quantile_interval(np.arange(1.0, 300.0), 0.99)
    assert (lo, hi) == (289.0, 299.0)  # ranks 289 and 299 (the maximum), coverage 95.02%


def test_median_interval_matches_the_textbook_ranks():
    # n = 10, 95%: (X(2), X(9)), coverage 1 - 2 * 11/1024 = 97.85% (e.g. Conover 1999, sec. 3.2).
    lo, hi, coverage = quantile_ranks(10, 0.5)
    assert (lo, hi) == (2, 9)
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)
    assert quantile_interval_min_count(0.5) == 6


def test_ranks_for_a_million_values_are_quick_and_near_95_percent():
    lo, hi, coverage = quantile_ranks(1_000_000, 0.99)
    assert lo < 990_000 < hi
    assert 0.95 <= coverage < 0.951


# --- Student's t across trials --------------------------------------------------------------------

# Two-sided 95% critical values, e.g. NIST/SEMATECH e-Handbook of Statistical Methods, sec. 1.3.6.7.2
# (upper 0.025 column).
T_TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 10: 2.228, 20: 2.086, 30: 2.042, 60: 2.000, 100: 1.984}


def test_t_critical_values_match_the_printed_table():
    for df, printed in T_TABLE.items():
        assert t_critical(df) == pytest.approx(printed, abs=6e-4)
    assert t_critical(1) == pytest.approx(math.tan(0.475 * math.pi), rel=1e-10)  # Cauchy: closed form
    assert t_critical(2) == pytest.approx(0.95 * math.sqrt(2 / (1 - 0.95**2)), rel=1e-10)
    assert t_two_sided_mass(1e9, 7) == pytest.approx(1.0)
    assert t_critical(10_000) == pytest.approx(NormalDist().inv_cdf(0.975), abs=1e-3)


@pytest.mark.parametrize("trials", [2, 3, 5])
def test_t_interval_covers_the_mean_of_normal_trials(trials):
    rng = np.random.default_rng(trials)
    values = rng.normal(100.0, 7.0, size=(DATA_SETS, trials))
    hits = np.mean([lo <= 100.0 <= hi for lo, hi in map(t_mean_interval, values)])
    assert 0.93 <= hits <= 0.97


def expected_sample_p99(n: int, sigma: float) -> float:
    """E[numpy's linear p99 of n lognormal(0, sigma) values]: E[X(r)] = int F^-1(u) Beta(u; r, n-r+1) du."""
    h = (n - 1) * 0.99
    j = math.floor(h)
    u = np.linspace(0.9, 1 - 1e-9, 200_001)
    inverse = np.exp(sigma * np.array([NormalDist().inv_cdf(x) for x in u]))

    def order_statistic_mean(rank: int) -> float:
        log_beta = math.lgamma(n + 1) - math.lgamma(rank) - math.lgamma(n - rank + 1)
        density = np.exp(log_beta + (rank - 1) * np.log(u) + (n - rank) * np.log1p(-u))
        return float(trapezoid(inverse * density, u))

    return (1 - (h - j)) * order_statistic_mean(j + 1) + (h - j) * order_statistic_mean(j + 2)


@pytest.mark.parametrize("trials", [3, 5])
def test_t_interval_over_trial_p99s_covers_the_expected_trial_p99(trials):
    # What the interval claims: the mean of one trial's p99 over trials run the same way. Here
    # 1,000 lognormal latencies a trial; that mean is 0.84% below the distribution's p99 (the
    # estimator's O(1/n) bias), which the docstring states.
    n, sigma = 1000, 0.5
    target = expected_sample_p99(n, sigma)
    assert target == pytest.approx(math.exp(sigma * NormalDist().inv_cdf(0.99)), rel=0.01)
    rng = np.random.default_rng(100 + trials)
    p99s = np.percentile(rng.lognormal(0.0, sigma, size=(DATA_SETS * trials, n)), 99, axis=1)
    hits = np.mean([lo <= target <= hi for lo, hi in map(t_mean_interval, p99s.reshape(DATA_SETS, trials))])
    assert 0.93 <= hits <= 0.97


def test_t_interval_is_nan_without_a_spread_or_with_a_missing_trial():
    assert all(math.isnan(v) for v in t_mean_interval(np.array([1.0])))
    assert all(math.isnan(v) for v in t_mean_interval(np.array([1.0, np.nan, 2.0])))
    lo, hi = t_mean_interval(np.array([10.0, 12.0, 11.0]))
    assert (lo, hi) == pytest.approx((11 - 4.303 / math.sqrt(3), 11 + 4.303 / math.sqrt(3)), abs=1e-3)


# --- the trials table -----------------------------------------------------------------------------


def rows(p99_intervals):
    out = []
    for i, (lo, hi) in enumerate(p99_intervals):
        name = "shared" if i == 0 else f"shared-t{i + 1}"
        out.append(
            {"deployment": name, "tenant": "a", "throughput_rps": 10.0 + i, "p50_ms": 5.0, "p90_ms": 8.0,
             "p95_ms": 9.0, "p99_ms": (lo + hi) / 2, "p99_ci_low_ms": lo, "p99_ci_high_ms": hi}
        )  # fmt: skip
    deployments = {r["deployment"]: {"base": "shared"} for r in out}
    return pd.DataFrame(out), deployments


def test_trials_agree_when_intervals_overlap():
    table = trials_table(*rows([(10, 14), (12, 16), (13, 15)]))
    assert len(table) == 1 and table.loc[0, "trials"] == 3
    assert bool(table.loc[0, "trials_agree"])
    assert table.loc[0, "throughput_rps_mean"] == pytest.approx(11.0)
    half = t_critical(2) * 1.0 / math.sqrt(3)  # throughputs 10, 11, 12: sd 1
    assert table.loc[0, "throughput_rps_ci_low"] == pytest.approx(11.0 - half)
    assert table.loc[0, "throughput_rps_ci_high"] == pytest.approx(11.0 + half)


def test_trials_disagree_when_an_interval_stands_apart():
    table = trials_table(*rows([(10, 12), (11, 13), (20, 22)]))
    assert not bool(table.loc[0, "trials_agree"])
    assert "disagree" in table.loc[0, "note"]


def test_agreement_is_not_claimed_when_trials_have_no_p99_interval():
    table = trials_table(*rows([(math.nan, math.nan), (math.nan, math.nan), (10, 12)]))
    assert "not checked" in table.loc[0, "note"] and "299" in table.loc[0, "note"]
    table = trials_table(*rows([(10, 12), (math.nan, math.nan), (20, 22)]))
    assert not bool(table.loc[0, "trials_agree"]) and "2 of 3 trials" in table.loc[0, "note"]


def test_single_trial_has_no_table():
    assert trials_table(*rows([(10, 12)])).empty


def test_plan_interleaves_trials():
    scenario = parse(
        {
            "name": "x",
            "run": {"repeat": 3},
            "tenants": [
                {"name": n, "model": "m", "sla_ms": 10, "load": {"arrival": "poisson", "rate": 1}} for n in ("a", "b")
            ],
        },
        "x.toml",
    )
    names = [d.name for d in plan(scenario)]
    assert names == [
        "shared", "solo-a", "solo-b", "shared-t2", "solo-a-t2", "solo-b-t2", "shared-t3", "solo-a-t3", "solo-b-t3",
    ]  # fmt: skip
    assert {d.base for d in plan(scenario)[3:]} == {"shared", "solo-a", "solo-b"}
