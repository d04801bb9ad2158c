"""Sweep analysis on hand-made points: Pareto frontiers, main effects, rank agreement, and the report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseus.sweep import analysis as an
from perseus.sweep import report

INF = math.inf


# -- Pareto frontier -------------------------------------------------------------------------------
def test_pareto_minimize_both():
    x = [1, 2, 3, 4, 2.5]
    y = [5, 3, 4, 1, 3]
    # (3, 4) is dominated by (2, 3); (2.5, 3) by (2, 3) (same y, more x).
    assert an.pareto_mask(x, y).tolist() == [True, True, False, True, False]


def test_pareto_maximize_x():
    x = [10, 20, 30, 20]  # throughput, higher is better
    y = [1, 2, 5, 3]
    assert an.pareto_mask(x, y, maximize_x=True).tolist() == [True, True, True, False]


def test_pareto_keeps_equal_points_and_drops_ties_that_are_worse():
    x = [1, 1, 1, 2]
    y = [2, 2, 3, 2]
    # The two (1, 2) do not dominate each other; (1, 3) and (2, 2) are dominated by them.
    assert an.pareto_mask(x, y).tolist() == [True, True, False, False]


def test_pareto_ignores_non_finite_points():
    x = [1, 2, np.nan, 0.5]
    y = [INF, 3, 0.1, 10]
    assert an.pareto_mask(x, y).tolist() == [False, True, False, True]


def test_pareto_single_and_empty():
    assert an.pareto_mask([3], [4]).tolist() == [True]
    assert an.pareto_mask([], []).tolist() == []


def test_pareto_matches_brute_force_on_random_points():
    rng = np.random.default_rng(5)
    x, y = rng.integers(0, 12, 300).astype(float), rng.integers(0, 12, 300).astype(float)
    brute = [
        not any(x[j] <= x[i] and y[j] <= y[i] and (x[j] < x[i] or y[j] < y[i]) for j in range(len(x)))
        for i in range(len(x))
    ]
    assert an.pareto_mask(x, y).tolist() == brute


# -- hand-made points ------------------------------------------------------------------------------
FACTORS = ["tenants.*.server.instances", "load.level"]
TENANTS = ["a", "b"]


def record(index, instances, level, a_p99, b_p99, cost, a_rps=10.0, b_rps=10.0, status="completed", valid=True):
    return {
        "point": f"p{index:03d}-abcdef",
        "index": index,
        "settings": {"tenants.*.server.instances": instances, "load.level": level},
        "scale": {"light": 0.5, "high": 2.0}[level],
        "status": status,
        "tenants": {
            "a": {"throughput_rps": a_rps, "objective_ms": a_p99, "sla_latency_ms": a_p99, "sla_met": valid,
                  "valid": valid},
            "b": {"throughput_rps": b_rps, "objective_ms": b_p99, "sla_latency_ms": b_p99, "sla_met": True,
                  "valid": True},
        }
        if status == "completed"
        else {},
        "deployment": {"cost_per_million_usd": cost} if status == "completed" else {},
    }  # fmt: skip


RECORDS = [
    record(1, 1, "light", 10, 30, 8.0),
    record(2, 1, "high", 40, 50, 2.0, a_rps=40, b_rps=40),
    record(3, 2, "light", 20, 20, 8.5),
    record(4, 2, "high", 60, 35, 2.2, a_rps=40, b_rps=40, valid=False),
    record(5, 3, "light", 0, 0, 0, status="failed"),
]


@pytest.fixture
def result() -> an.SweepAnalysis:
    return an.analyse(list(reversed(RECORDS)), FACTORS, TENANTS, 99)


def test_points_table(result):
    t = result.table
    assert t["point"].tolist() == [r["point"] for r in RECORDS]  # design order, whatever the input order
    assert t.columns[:4].tolist() == ["point", "index", *FACTORS]
    assert t["worst_p99_ms"].tolist()[:4] == [30, 50, 20, 60]
    assert t["throughput_rps"].tolist()[:4] == [20, 80, 20, 80]
    assert t["valid"].tolist() == [True, True, True, False, False]
    failed = t.iloc[4]
    assert failed["status"] == "failed" and math.isnan(failed["worst_p99_ms"]) and not failed["slas_met"]
    assert {"a.p99_ms", "b.p99_ms", "a.valid", "b.throughput_rps"} <= set(t.columns)


def test_frontiers(result):
    p = result.pareto
    cost = p[p["frontier"] == an.COST_FRONTIER]
    # cost/worst: (8, 30) (2, 50) (8.5, 20) (2.2, 60): p004 is dominated by p002, p001 is not dominated.
    assert cost["point"].tolist() == ["p002-abcdef", "p001-abcdef", "p003-abcdef"]
    tput = p[p["frontier"] == an.THROUGHPUT_FRONTIER]
    # throughput/worst: (20, 30) (80, 50) (20, 20) (80, 60): p003 and p002.
    assert tput["point"].tolist() == ["p002-abcdef", "p003-abcdef"]
    assert "p005-abcdef" not in p["point"].tolist()
    assert p.columns[0] == "frontier"


def test_main_effects(result):
    e = result.effects.set_index(["factor", "level", "outcome"])
    assert e.loc[("tenants.*.server.instances", "1", "worst_p99_ms"), "mean"] == 40  # (30 + 50) / 2
    assert e.loc[("tenants.*.server.instances", "2", "worst_p99_ms"), "mean"] == 40  # (20 + 60) / 2
    assert e.loc[("load.level", "high", "cost_per_million_usd"), "mean"] == pytest.approx(2.1)
    three = e.loc[("tenants.*.server.instances", "3", "worst_p99_ms")]
    assert math.isnan(three["mean"]) and three["points"] == 0  # only a failed point: no mean
    assert list(dict.fromkeys(result.effects["level"])) == ["1", "2", "3", "light", "high"]  # design order


def test_main_effects_skip_infinite_outcomes():
    table = pd.DataFrame({"status": ["completed"] * 3, "f": [1, 1, 2], "y": [1.0, INF, 5.0]})
    e = an.main_effects(table, ["f"], ["y"])
    assert e["mean"].tolist() == [1.0, 5.0] and e["points"].tolist() == [1, 1]


def test_rank_agreement_within_load_levels(result):
    g = result.agreement
    assert g.stratified and g.points == 4
    # Within each level, a prefers 1 instance (10 < 20, 40 < 60); b prefers 2 (20 < 30, 35 < 50).
    assert g.best == {"a": "instances=1", "b": "instances=2"}
    assert g.same_best is False
    assert g.matrix.loc["a", "b"] == pytest.approx(-1.0)
    assert g.matrix.loc["a", "a"] == pytest.approx(1.0)


def test_rank_agreement_without_load_factor_is_plain_spearman():
    table = pd.DataFrame(
        {
            "status": ["completed"] * 5,
            "f": [1, 2, 3, 4, 5],
            "a.p99_ms": [1.0, 2.0, 3.0, 4.0, 5.0],
            "b.p99_ms": [10.0, 30.0, 20.0, 50.0, 40.0],
            "c.p99_ms": [5.0, 4.0, 3.0, 2.0, 1.0],
        }
    )
    g = an.rank_agreement(table, ["a", "b", "c"], 99, ["f"])
    assert not g.stratified
    expected = table[["a.p99_ms", "b.p99_ms"]].corr(method="spearman").iloc[0, 1]
    assert g.matrix.loc["a", "b"] == pytest.approx(expected) == pytest.approx(0.8)
    assert g.matrix.loc["a", "c"] == pytest.approx(-1.0)
    assert g.best == {"a": "f=1", "b": "f=1", "c": "f=5"} and g.same_best is False


def test_rank_agreement_same_best():
    table = pd.DataFrame(
        {"status": ["completed"] * 3, "f": [True, False, True], "a.p99_ms": [1.0, 2.0, 1.5],
         "b.p99_ms": [3.0, 9.0, 4.0]}
    )  # fmt: skip
    g = an.rank_agreement(table, ["a", "b"], 99, ["f"])
    assert g.best == {"a": "f=true", "b": "f=true"} and g.same_best is True


def test_rank_agreement_one_tenant_or_only_load():
    table = pd.DataFrame({"status": ["completed"] * 2, "load.level": ["light", "high"], "a.p99_ms": [1.0, 2.0]})
    g = an.rank_agreement(table, ["a"], 99, ["load.level"])
    assert g.best == {} and g.same_best is None


def test_cheapest_meeting_slas(result):
    assert an.cheapest_meeting_slas(result.table, 99)["point"] == "p002-abcdef"
    assert an.cheapest_meeting_slas(result.table.assign(valid=False), 99) is None
    same_cost = result.table.assign(cost_per_million_usd=1.0)  # ties: the lower worst latency wins
    assert an.cheapest_meeting_slas(same_cost, 99)["point"] == "p003-abcdef"


def test_labels():
    assert an.factor_label("tenants.*.server.instances") == "instances"
    assert an.factor_label("tenants.vision.server.instances") == "vision.instances"
    assert an.factor_label("load.level") == "load level"
    assert an.worst_name(99.9) == "worst_p99.9_ms"


# -- report ----------------------------------------------------------------------------------------
@dataclass
class Price:
    name: str = "g4dn.xlarge"
    usd_per_hour: float = 0.526


def test_report_writes_everything(result, tmp_path: Path):
    text = report.write(tmp_path, result, scenario="t", sampling="factorial", total=6, price=Price())
    assert (tmp_path / "sweep.md").read_text() == text
    assert text.startswith("# perseus sweep: t")
    assert "5 of 6 points committed" in text and "rerun with the same `--out`" in text
    assert "**No**: the tenants' best configurations differ." in text
    assert "a–b ρ = -1.00 (opposite rankings)" in text
    assert "Cheapest point where every tenant is VALID" in text and "p002-abcdef" in text
    assert pd.read_csv(tmp_path / "sweep.csv")["point"].tolist() == result.table["point"].tolist()
    assert set(pd.read_csv(tmp_path / "pareto.csv")["frontier"]) == {an.COST_FRONTIER, an.THROUGHPUT_FRONTIER}
    assert len(pd.read_csv(tmp_path / "main_effects.csv")) == len(result.effects)
    for name in ("pareto.png", "main_effects.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:4] == b"\x89PNG"


def test_report_with_nothing_measured(tmp_path: Path):
    empty = an.analyse([record(1, 1, "light", 0, 0, 0, status="failed")], FACTORS, TENANTS, 99)
    text = report.write(tmp_path, empty, scenario="t", sampling="lhs", total=3, price=Price())
    assert "No point is VALID for every tenant" in text
    assert "No measured point with finite outcomes." in text
    assert not (tmp_path / "plots" / "pareto.png").exists()
