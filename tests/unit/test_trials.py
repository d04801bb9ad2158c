"""Repeated trials: order-statistic intervals, trial bootstrap, agreement, and the trial plan."""

import numpy as np
import pandas as pd
import pytest

from perseus.analysis.trials import bootstrap_mean_interval, quantile_interval, trials_table
from perseus.plan import plan
from perseus.scenario import parse


def test_quantile_interval_covers_the_true_quantile_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_p99 = -np.log(0.01)  # exponential(1)
    hits = 0
    for _ in range(400):
        lo, hi = quantile_interval(np.sort(rng.exponential(size=2000)), 0.99)
        hits += lo <= true_p99 <= hi
    assert 0.90 <= hits / 400 <= 0.99


def test_bootstrap_interval_brackets_the_mean_and_is_seeded():
    values = np.array([10.0, 12.0, 11.0, 13.0])
    lo, hi = bootstrap_mean_interval(values)
    assert lo <= values.mean() <= hi
    assert (lo, hi) == bootstrap_mean_interval(values)
    assert np.isnan(bootstrap_mean_interval(np.array([1.0]))[0])


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


def test_trials_disagree_when_an_interval_stands_apart():
    table = trials_table(*rows([(10, 12), (11, 13), (20, 22)]))
    assert not bool(table.loc[0, "trials_agree"])
    assert "disagree" in table.loc[0, "note"]


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
