"""`perseus plan`'s pure parts: the capacity prediction, the plan's figures, and plan.toml being runnable."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from perseus import scenario as scenarios
from perseus.analysis.bracket import Search
from perseus.packing.analysis import summarize_plan
from perseus.packing.predict import additive_scale, predicted_scale
from perseus.packing.probes import holds
from perseus.packing.report import plan_toml
from perseus.packing.run import Measured, Space, brackets, group_names, options, planned_scenario
from perseus.packing.solve import Option, solve
from perseus.packing.variants import Member
from perseus.plan import plan
from tests.conftest import REPO_ROOT

A, B, C = frozenset("a"), frozenset("b"), frozenset("c")


def test_additive_utilisation_and_measured_slowdown():
    solo = {"a": 4.0, "b": 2.0, "c": 4.0}  # a uses 1/4 of a server at its rate, b 1/2, c 1/4
    assert additive_scale("ab", solo) == pytest.approx(1 / 0.75)
    assert predicted_scale(frozenset("ab"), solo, {}) == pytest.approx(1 / 0.75)
    # {a, b} measured at 1.0 against 1.333 additive: a slow-down factor of 0.75 ...
    measured = {frozenset("ab"): 1.0}
    assert predicted_scale(frozenset("ab"), solo, measured) == 1.0  # a measured group is its measurement
    # ... applied to the groups that contain it; the others stay additive (optimistic: it only picks what to measure)
    assert predicted_scale(frozenset("abc"), solo, measured) == pytest.approx(1 / 1.0 * 0.75)
    assert predicted_scale(frozenset("ac"), solo, measured) == pytest.approx(2.0)
    # a group carries at least what a measured group holding it carries
    assert predicted_scale(frozenset("ac"), solo, {frozenset("abc"): 2.5}) == 2.5
    assert predicted_scale(frozenset("ab"), {"a": 0.0, "b": 2.0}, {}) == 0.0  # a tenant that fits nowhere


def test_a_light_tenant_without_evidence_but_without_a_miss_does_not_veto_a_scale():
    base = {"valid": False, "errors": 0, "requests": 30, "sla_latency_ms": 5.0, "sla_ms": 50.0,
            "evidence_ok": False, "over_sla": 0}  # fmt: skip
    assert holds(base)
    assert not holds({**base, "over_sla": 1})  # one miss: no benefit of the doubt
    assert not holds({**base, "errors": 1})
    assert not holds({**base, "evidence_ok": True})  # enough evidence and still INVALID: a real miss
    assert holds({**base, "valid": True, "evidence_ok": True})


def _search(k, upper=None):
    return Search(capacity=k, upper=upper, probes=[(k, True)])


def _space(tenants, price=1.0, instance="i", imported=()) -> Space:
    """A plan's space over tenants with one model each (the member of tenant t is t)."""
    return Space(tuple(tenants), {t: Member(t, t, f"m-{t}") for t in tenants}, instance, price, tuple(imported))


def _summary(space: Space, measured: Measured, packing, **kw):
    args = dict(
        tenants=list(space.tenants), rates={t: 1.0 for t in space.tenants}, table=space.table,
        options=options(space, measured, list(space.tenants), False), searches=brackets(space, measured),
        predicted=measured.predicted, packing=packing, names=group_names(packing) if packing else [], headroom=0.25,
        verification={}, busy={}, shares={}, infeasible=[], interrupted=False,
    )  # fmt: skip
    return summarize_plan(**{**args, **kw})


def test_the_plan_figures_and_the_fleets_it_beats():
    searches = {A: _search(4.0, 4.5), B: _search(0.6, 0.7), C: _search(5.0, 6.0), frozenset("ac"): _search(2.0, 2.5)}
    price = 1.0
    tenants = ["a", "b", "c"]
    measured = Measured(searches=searches, predicted={frozenset("ac"): 2.2})
    space = _space(tenants, price, "g4dn.xlarge")
    packing = solve(tenants, options(space, measured, tenants, False), 0.25)
    names = group_names(packing)
    assert sorted(g.tenants for g in packing.groups) == [("a", "c"), ("b",)]
    summary = _summary(
        space,
        measured,
        packing,
        rates={"a": 10.0, "b": 20.0, "c": 5.0},
        verification={n: {"x": {"valid": True, "sla_met": True}} for n in names},
        busy={n: 0.5 for n in names},
    )
    plan_rows = summary.plan.set_index("tenants")
    assert plan_rows.loc["a c", "models"] == "m-a m-c" and set(plan_rows["measured_in"]) == {"here"}
    assert plan_rows.loc["b", "replicas"] == 3  # ceil(1.25 / 0.6)
    assert plan_rows.loc["a c", "replicas"] == 1 and plan_rows.loc["a c", "predicted_scale"] == 2.2
    fleets = {f.name: f for f in summary.fleets}
    assert fleets["plan"].servers == 4 and fleets["all dedicated"].servers == 5
    assert fleets["all shared"].servers is None  # the group of all three was never measured
    assert summary.verified and "20% less than all dedicated" in summary.verdict
    assert summary.median_prediction_error == pytest.approx(0.1)
    # chargeback by utilisation alone (no verification shares): a uses 1/4, c 1/5 of a server
    charge = summary.chargeback.set_index("tenant")
    assert charge.loc["a", "share"] == pytest.approx(0.25 / 0.45)
    assert charge["usd_per_hour"].sum() == pytest.approx(4.0)
    assert summary.shapley is None  # not every coalition was measured


def test_shapley_when_every_coalition_is_measured():
    searches = {A: _search(2.0), B: _search(2.0), frozenset("ab"): _search(1.5)}
    measured = Measured(searches=searches)
    space = _space(["a", "b"])
    packing = solve(["a", "b"], options(space, measured, ["a", "b"], False), 0.25)
    summary = _summary(space, measured, packing)
    assert summary.shapley is not None
    assert summary.shapley["usd_per_hour"].sum() == pytest.approx(1.0)  # one server for both
    assert list(summary.shapley["share"]) == pytest.approx([0.5, 0.5])  # identical tenants pay the same
    assert not summary.verified  # nothing was verified


def test_an_infeasible_tenant_is_named_with_its_capacity():
    searches = {A: Search(capacity=None, upper=1 / 64), B: _search(2.0)}
    space, measured = _space(["a", "b"]), Measured(searches=searches)
    packing = solve(["b"], options(space, measured, ["b"], False), 0.25)
    summary = _summary(
        space, measured, packing, verification={"b": {"b": {"valid": True, "sla_met": True}}}, infeasible=["a"]
    )
    assert summary.verdict.startswith("no server meets the SLA of a (measured capacity: below 0.0156x")
    assert not summary.verified


def test_plan_toml_runs_the_packing(tmp_path: Path):
    loaded, _ = scenarios.load(REPO_ROOT / "scenarios" / "smoke.toml")
    packing = solve(
        ["vision", "series"], [Option(frozenset(["vision"]), 0.5, 1.0), Option(frozenset(["series"]), 3.0, 1.0)]
    )
    planned = planned_scenario(loaded, packing, loaded.pricing.instance)
    path = tmp_path / "plan.toml"
    path.write_text(plan_toml(planned, REPO_ROOT / "model_repository"))
    again, _ = scenarios.load(path)
    deployments = plan(again)
    assert sorted((d.name, d.tenants, d.replicas) for d in deployments) == [
        ("series", ("series",), 1),
        ("vision", ("vision",), 3),
    ]
    assert again.server.model_repository == str((REPO_ROOT / "model_repository").resolve())
    assert math.isclose(again.tenant("vision").load.rate, loaded.tenant("vision").load.rate)


def test_a_prediction_stays_below_where_a_group_inside_it_failed():
    solo = {"a": 4.0, "b": 4.0, "c": 4.0}
    # {a, b} measured far above additive (2.0): sharing ran the models in parallel. Its factor 1.75 predicts
    # {a, b, c} at 1.333 x 1.75 = 2.33 ...
    assert predicted_scale(frozenset("abc"), solo, {frozenset("ab"): 3.5}) == pytest.approx(7 / 3)
    # ... but c alone failed at 2.0, and a group never carries more than one of its tenants alone.
    assert predicted_scale(frozenset("abc"), solo, {frozenset("ab"): 3.5}, {frozenset("c"): 2.0}) == 2.0
    # A subset's passing scale is no ceiling: capacity lies anywhere below its first failure.
    assert predicted_scale(frozenset("abc"), solo, {frozenset("ab"): 3.5}, {frozenset("c"): 4.5}) == pytest.approx(
        7 / 3
    )
    # With {a, c} measured at 1.5 (factor 0.75), the smallest factor inside wins: 1.333 x 0.75 = 1.0.
    assert predicted_scale(frozenset("abc"), solo, {frozenset("ab"): 3.5, frozenset("ac"): 1.5}) == pytest.approx(1.0)
