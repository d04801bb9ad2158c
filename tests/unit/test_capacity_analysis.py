"""Capacity figures and the interference matrix on hand-made searches."""

import math

import pytest

from perseus.analysis.bracket import Search, Searched
from perseus.capacity.analysis import capacities, interference
from perseus.plan import probe_scenario
from perseus.scenario import parse


def search(k, upper=None):
    return Search(capacity=k, upper=upper, probes=[(k, True)] + ([(upper, False)] if upper else []))


def test_gain_and_savings_against_the_linear_baseline():
    rates = {"a": 10.0, "b": 20.0}
    searches = {
        "solo-a": Searched(("a",), "solo", search(4.0, 4.4)),  # a alone: 40 req/s
        "solo-b": Searched(("b",), "solo", search(3.0, 3.3)),  # b alone: 60 req/s
        "shared": Searched(("a", "b"), "shared", search(2.5, 2.75)),  # together: 25 + 50 req/s
    }
    caps = capacities(searches, rates, usd_per_hour=3.6)
    # gain = 25/40 + 50/60 = 0.625 + 0.8333
    assert caps.colocation_gain == pytest.approx(0.625 + 50 / 60)
    # shared: $3.6/h over 75 req/s -> 3.6 / (75 * 3600) * 1e6 = $13.33 per million
    assert caps.shared_cost_per_million_usd == pytest.approx(3.6 / (75 * 3600) * 1e6, rel=1e-6)
    assert caps.savings == pytest.approx(1 - 1 / caps.colocation_gain)
    assert "above the linear baseline" in caps.verdict
    shared_rows = caps.table[caps.table["deployment"] == "shared"]
    assert list(shared_rows["capacity_rps"]) == [25.0, 50.0]


def test_no_shared_capacity_is_said_plainly():
    caps = capacities({"shared": Searched(("a",), "shared", Search(None, 1 / 64))}, {"a": 5.0}, 1.0)
    assert caps.shared_scale is None and math.isnan(caps.savings)
    assert "does not fit" in caps.verdict


def test_interference_matrix_is_the_p99_ratio():
    m = interference({("a", "b"): 30.0, ("b", "a"): 10.0}, {"a": 15.0, "b": 10.0}, ["a", "b"])
    assert m.loc["a", "b"] == pytest.approx(2.0)
    assert m.loc["b", "a"] == pytest.approx(1.0)
    assert m.loc["a", "a"] == 1.0


def test_probe_lengthens_to_gather_enough_evidence():
    scenario = parse(
        {
            "name": "x",
            "run": {"duration_s": 5, "min_requests": 100, "min_duration_s": 2},
            "tenants": [{"name": "a", "model": "m", "sla_ms": 10, "load": {"arrival": "poisson", "rate": 20}}],
        },
        "x.toml",
    )
    assert probe_scenario(scenario, 8.0, ("a",)).run.duration_s == 5  # 160 req/s x 5 s is plenty
    # p99 with none over needs 459 requests (x1.2 margin): at 0.5 x 20 = 10 req/s that is 55 s,
    # capped at 8x the scenario's duration.
    assert probe_scenario(scenario, 0.5, ("a",)).run.duration_s == 40
    assert probe_scenario(scenario, 0.5, ("a",)).tenants[0].load.rate == 10


def test_searches_that_never_failed_claim_no_saving():
    # Every search stopped at the same ceiling: 1 - 1/N "saved" by construction, so nothing is claimed.
    rates = {"a": 10.0, "b": 10.0}
    searches = {
        "solo-a": Searched(("a",), "solo", Search(capacity=8.0, upper=None)),
        "solo-b": Searched(("b",), "solo", Search(capacity=8.0, upper=None)),
        "shared": Searched(("a", "b"), "shared", Search(capacity=8.0, upper=None)),
    }
    caps = capacities(searches, rates, usd_per_hour=1.0)
    assert math.isnan(caps.savings)
    assert "at least 8x" in caps.verdict and "no saving claimed" in caps.verdict
