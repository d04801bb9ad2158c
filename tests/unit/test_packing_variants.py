"""`perseus plan`'s model variants (`models = [...]`) and capacity imported from other hardware (`--from`)."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from perseus import checks
from perseus import scenario as scenarios
from perseus.analysis.bracket import Search
from perseus.errors import InputError
from perseus.packing import imported as imports
from perseus.packing.analysis import summarize_plan
from perseus.packing.imported import Imported
from perseus.packing.report import plan_toml
from perseus.packing.run import Measured, Space, brackets, group_names, options, planned_scenario
from perseus.packing.solve import solve
from perseus.packing.variants import best_members, members, models_of, tenants_of
from perseus.pricing.catalog import lookup
from tests.conftest import REPO_ROOT

FLEET = REPO_ROOT / "docs" / "samples" / "fleet"


def _scenario(**tenant_a) -> scenarios.Scenario:
    a = {"name": "a", "sla_ms": 50.0, "load": {"rate": 10.0}, **tenant_a}
    b = {"name": "b", "model": "resnet_tiny", "sla_ms": 50.0, "load": {"rate": 10.0}}
    return scenarios.parse({"name": "v", "tenants": [a, b]}, "v.toml")


def _found(k: float, upper: float | None = None) -> Search:
    return Search(capacity=k, upper=upper, probes=[(k, True)])


def _summary(space: Space, measured: Measured, packing):
    return summarize_plan(
        tenants=list(space.tenants), rates={t: 10.0 for t in space.tenants}, table=space.table,
        options=options(space, measured, list(space.tenants), False), searches=brackets(space, measured),
        predicted=measured.predicted, packing=packing, names=group_names(packing), headroom=0.25,
        verification={}, busy={}, shares={}, infeasible=[], interrupted=False,
    )  # fmt: skip


# -- the scenario's `models` ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("tenant", "field", "reason"),
    [
        ({"models": []}, "tenants[0]", "models must be a non-empty list of model names (got [])"),
        ({"models": "resnet"}, "tenants[0]", "models must be a non-empty list"),
        ({"models": ["resnet", ""]}, "tenants[0]", "models must be a non-empty list"),
        ({"models": ["resnet", "resnet"]}, "tenants[0].models", "lists a model twice"),
        ({"model": "bert", "models": ["resnet", "bert"]}, "tenants[0]", "give either model or models"),
        ({}, "tenants[0].model", "required key is missing"),
    ],
)
def test_a_bad_models_list_is_one_line_naming_the_field(tenant, field, reason):
    with pytest.raises(InputError) as err:
        _scenario(**tenant)
    assert err.value.field == field and reason in err.value.reason


def test_models_default_to_the_first_and_every_other_command_runs_it():
    sc = _scenario(models=["resnet", "resnet_tiny"])
    a = sc.tenant("a")
    assert a.model == "resnet" and a.variants == ("resnet", "resnet_tiny")
    assert sc.with_models({"a": "resnet_tiny"}).tenant("a").model == "resnet_tiny"
    assert sc.with_models({"a": "resnet_tiny"}).tenant("a").models is None  # the plan's choice is final
    # The effective scenario a manifest stores holds both keys; it parses back to the same tenant.
    again = scenarios.parse(sc.model_dump(mode="json"), "manifest")
    assert again.tenant("a") == a


def test_every_variant_must_exist_in_the_repository():
    sc = _scenario(models=["resnet", "no_such_model"])
    with pytest.raises(InputError) as err:
        checks.repository.check_models(sc, REPO_ROOT / "model_repository", "v.toml")
    assert err.value.field == "tenants[0].models[1]" and "no model 'no_such_model'" in err.value.reason


# -- members and the variant a plan picks ---------------------------------------------------------------------
def test_members_name_a_tenant_with_variants_by_its_model():
    table = members(_scenario(models=["resnet", "resnet_tiny"]))
    assert list(table) == ["a=resnet", "a=resnet_tiny", "b"]
    assert tenants_of({"a=resnet_tiny", "b"}, table) == {"a", "b"}
    assert models_of({"a=resnet_tiny", "b"}, table) == {"a": "resnet_tiny", "b": "resnet_tiny"}
    assert best_members(["a", "b"], table, {"a=resnet": 0.5, "a=resnet_tiny": 3.0, "b": 2.0}) == {"a=resnet_tiny", "b"}
    assert best_members(["a"], table, {}) == {"a=resnet"}  # nothing measured: the default


def test_the_plan_picks_the_variant_that_makes_the_fleet_cheapest():
    sc = _scenario(models=["resnet", "resnet_tiny"])
    space = Space(("a", "b"), members(sc), "g4dn.xlarge", 0.5)
    measured = Measured(
        searches={
            frozenset(["a=resnet"]): _found(0.5, 0.6),  # the default needs 3 servers alone
            frozenset(["a=resnet_tiny"]): _found(3.0, 4.0),
            frozenset(["b"]): _found(3.0, 4.0),
        }
    )
    # The prediction (what to measure next) pairs b with a's lighter variant ...
    predicted = [o for o in options(space, measured, ["a", "b"], True) if not o.measured]
    assert [sorted(o.members) for o in predicted] == [["a=resnet_tiny", "b"]]
    # ... and once that group is measured, the plan serves it: one server instead of 3 + 1 or 1 + 1.
    measured.searches[frozenset(["a=resnet_tiny", "b"])] = _found(1.5, 2.0)
    packing = solve(["a", "b"], options(space, measured, ["a", "b"], False), 0.25)
    assert packing.servers == 1 and packing.groups[0].option.members == {"a=resnet_tiny", "b"}
    planned = planned_scenario(sc, packing, "g4dn.xlarge")
    assert planned.tenant("a").model == "resnet_tiny" and planned.tenant("a").models is None
    again = scenarios.parse(scenarios.tomllib.loads(plan_toml(planned, REPO_ROOT / "model_repository")), "plan.toml")
    assert again.tenant("a").model == "resnet_tiny"
    row = _summary(space, measured, packing).plan.iloc[0]
    assert row["models"] == "resnet_tiny resnet_tiny" and row["tenants"] == "a b"


def test_two_variants_of_one_tenant_are_never_a_group():
    space = Space(("a", "b"), members(_scenario(models=["resnet", "resnet_tiny"])), "i", 1.0)
    measured = Measured(searches={frozenset([m]): _found(2.0) for m in space.table})
    assert all(len(o.members) == len(o.tenants) for o in options(space, measured, ["a", "b"], True))


# -- capacity from other hardware (--from) --------------------------------------------------------------------
def test_a_group_measured_elsewhere_joins_the_plan_priced_as_its_instance_and_stays_unverified():
    sc = _scenario(model="resnet")
    gpu = Imported("gpu-plan", "g5.xlarge", 1.006, {frozenset(["a", "b"]): _found(4.0, 5.0)})
    space = Space(("a", "b"), members(sc), "c7i.xlarge", 0.6, (gpu,))
    # Here each tenant needs 2 servers of its own (1.25 / 1.0), and the pair fails together: $2.40/h.
    measured = Measured(
        searches={
            frozenset("a"): _found(1.0, 1.2),
            frozenset("b"): _found(1.0, 1.2),
            frozenset("ab"): Search(None, 1 / 64),
        }
    )
    packing = solve(["a", "b"], options(space, measured, ["a", "b"], False), 0.25)
    (group,) = packing.groups
    assert group.option.instance == "g5.xlarge" and group.option.source == "gpu-plan"
    assert packing.usd_per_hour == pytest.approx(1.006)
    summary = _summary(space, measured, packing)
    row = summary.plan.iloc[0]
    assert row["instance"] == "g5.xlarge" and row["measured_in"] == "gpu-plan" and not row["verified"]
    assert row["capacity_high"] == 5.0
    assert not summary.verified and "come from gpu-plan and were not rerun here" in summary.verdict
    fleets = {f.name: f for f in summary.fleets}
    assert fleets["all dedicated"].usd_per_hour == pytest.approx(2.4)  # the cheapest dedicated, over both
    assert planned_scenario(sc, packing, "c7i.xlarge").deployments[0].instance == "g5.xlarge"


def _fleet() -> scenarios.Scenario:
    return scenarios.load(REPO_ROOT / "scenarios" / "fleet.toml")[0]


def _price_of(sc):
    return partial(checks.check_price, sc, "--from", field="instance")


def test_the_committed_fleet_plan_imports_with_the_capacities_it_reported():
    # Written before tenants had load.protocol: a key added since, at its default, is no difference.
    sc = _fleet()
    got = imports.read(FLEET, sc, members(sc), _price_of(sc))
    assert got.instance == "g4dn.xlarge"
    assert got.usd_per_hour == lookup("aws", "g4dn.xlarge", sc.pricing.region, sc.pricing.market).usd_per_hour
    plan = pd.read_csv(FLEET / "plan.csv")
    for row in plan.to_dict("records"):
        search = got.searches[frozenset(row["tenants"].split())]
        assert search.capacity == pytest.approx(row["capacity_scale"])
        high = row["capacity_high"]
        assert (search.upper is None) if high == float("inf") else search.upper == pytest.approx(high)


def test_an_import_of_other_tenants_is_refused_with_one_line(tmp_path: Path):
    sc = _fleet()
    changed = sc.model_copy(
        update={"tenants": [t.model_copy(update={"sla_ms": 1.0}) if t.name == "search" else t for t in sc.tenants]}
    )
    with pytest.raises(InputError, match="tenant 'search' has another sla_ms there"):
        imports.read(FLEET, changed, members(changed), _price_of(changed))
    with pytest.raises(InputError, match="no such folder"):
        imports.read(tmp_path / "nope", sc, members(sc), _price_of(sc))
    with pytest.raises(InputError, match="not a `perseus plan` folder"):
        imports.read(REPO_ROOT / "docs" / "samples" / "mixed", sc, members(sc), _price_of(sc))
    copy = tmp_path / "fleet"
    shutil.copytree(FLEET, copy)
    probes = pd.read_csv(copy / "probes.csv")
    probes.assign(tenant=probes["tenant"].replace({"tags": "ghost"})).to_csv(copy / "probes.csv", index=False)
    with pytest.raises(InputError, match="names tenant 'ghost', not in its manifest"):
        imports.read(copy, sc, members(sc), _price_of(sc))


def test_equally_cheap_variants_go_to_the_tenants_preferred_model():
    sc = _scenario(models=["resnet_tiny", "bert_tiny"])  # alphabetically bert_tiny would come first
    space = Space(("a", "b"), members(sc), "i", 1.0)
    measured = Measured(searches={frozenset([m]): _found(8.0) for m in space.table})
    packing = solve(["a"], options(space, measured, ["a"], False), 0.25)
    assert packing.groups[0].option.members == {"a=resnet_tiny"}
    # ... but a variant that saves a server wins whatever its place in the list.
    measured.searches[frozenset(["a=resnet_tiny"])] = _found(1.0)
    packing = solve(["a"], options(space, measured, ["a"], False), 0.25)
    assert packing.groups[0].option.members == {"a=bert_tiny"}
