"""Honest cost: busy fraction from execution counters, cost per good inference, cost at capacity with its
interval, and [[deployments]] groups (their bad input, replicas, pricing)."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest

from perseus.analysis import cost
from perseus.analysis.at_capacity import cost_at_capacity
from perseus.analysis.summary import summarize
from perseus.errors import InputError
from perseus.kinds import DeploymentKind
from perseus.plan import plan, scenario_for
from perseus.scenario import parse
from perseus.telemetry.triton import STATS_COMPUTE_US, STATS_EXECUTIONS, stats_rows_from

COLUMNS = ["tenant", "model", "deployment", "scheduled_s", "sent_s", "done_s", "latency_ms", "ok", "warmup"]


def records(tenant: str, deployment: str, latency: np.ndarray, ok: np.ndarray | None = None) -> pd.DataFrame:
    n = len(latency)
    t = np.arange(n) / (n / 10)  # spread over a 10 s window
    ok = np.ones(n, dtype=bool) if ok is None else ok
    return pd.DataFrame(
        {"tenant": tenant, "model": "m", "deployment": deployment, "scheduled_s": t, "sent_s": t,
         "done_s": t + latency / 1e3, "latency_ms": latency, "ok": ok, "warmup": False},
        columns=COLUMNS,
    )  # fmt: skip


def stats_telemetry(deployment: str, per_tenant: dict[str, tuple[float, float]]) -> pd.DataFrame:
    """Statistics-API rows at t = 0 and t = 10: tenant -> (execution compute us, executions) over the window."""
    rows = []
    for tenant, (compute_us, executions) in per_tenant.items():
        labels = json.dumps({"model": tenant, "version": "1"}, sort_keys=True)
        for t, k in ((0.0, 0.0), (10.0, 1.0)):
            rows.append((deployment, t, "triton", STATS_COMPUTE_US, labels, 1000.0 + k * compute_us))
            rows.append((deployment, t, "triton", STATS_EXECUTIONS, labels, 5.0 + k * executions))
    return pd.DataFrame(rows, columns=["deployment", "t_s", "source", "metric", "labels", "value"])


SCENARIO = {
    "name": "c",
    "run": {"min_requests": 10, "min_duration_s": 1},
    "tenants": [
        {"name": "a", "model": "m", "sla_ms": 50, "sla_percentile": 90, "load": {"arrival": "poisson", "rate": 10}},
        {"name": "b", "model": "m", "sla_ms": 50, "sla_percentile": 90, "load": {"arrival": "poisson", "rate": 10}},
    ],
}


def test_stats_reply_counts_each_execution_once_and_skips_what_is_not_the_documented_shape():
    reply = {
        "model_stats": [
            {"name": "a", "version": "1", "batch_stats": [
                {"batch_size": 1, "compute_input": {"count": 3, "ns": 1000}, "compute_infer": {"count": 3, "ns": 9000},
                 "compute_output": {"count": 3, "ns": 2000}},
                {"batch_size": 4, "compute_input": {"count": 2, "ns": 500}, "compute_infer": {"count": 2, "ns": 20000},
                 "compute_output": {"count": 2, "ns": 500}},
            ]},
            {"name": "b", "batch_stats": [{"compute_infer": {"count": "x", "ns": None}}]},
            "not a model", {"version": "1"},
        ]
    }  # fmt: skip
    rows = {(json.loads(r[3])["model"], r[2]): r[4] for r in stats_rows_from(reply, 1.5)}
    assert rows[("a", STATS_COMPUTE_US)] == pytest.approx(33.0)  # (1 + 9 + 2 + 0.5 + 20 + 0.5) us
    assert rows[("a", STATS_EXECUTIONS)] == 5  # 3 executions of 1 and 2 of 4: five, not 11 requests
    assert rows[("b", STATS_COMPUTE_US)] == 0 and rows[("b", STATS_EXECUTIONS)] == 0
    assert stats_rows_from({"model_stats": "nope"}, 0.0) == [] and stats_rows_from([1], 0.0) == []


def test_busy_fraction_from_recorded_counters():
    reqs = pd.concat([records("a", "shared", np.full(100, 5.0)), records("b", "shared", np.full(100, 5.0))])
    deps = {"shared": {"tenants": ["a", "b"], "duration_s": 10.0, "status": "completed", "kind": "shared",
                       "instances": {"a": 1, "b": 2}}}  # fmt: skip
    # a executed 2 s of its 10 s x 1 instance; b 3 s of its 10 s x 2 instances
    telemetry = stats_telemetry("shared", {"a": (2e6, 100), "b": (3e6, 100)})
    s = summarize(reqs, SCENARIO, deps, 3.6, telemetry=telemetry)
    rows = s.rows.set_index("tenant")
    assert rows.loc["a", "busy_fraction"] == pytest.approx(0.2)
    assert rows.loc["b", "busy_fraction"] == pytest.approx(0.15)
    assert s.deployments.iloc[0]["busy_fraction"] == pytest.approx(5.0 / (10 * 3))
    # the chargeback rests on the execution counters, and says so
    charge = s.chargeback.set_index("tenant")
    assert charge.loc["a", "compute_share"] == pytest.approx(0.4)
    assert set(charge["compute_counter"]) == {cost.EXECUTION}


def test_no_statistics_means_no_busy_figure_and_the_per_request_counters_are_named():
    reqs = pd.concat([records("a", "shared", np.full(100, 5.0)), records("b", "shared", np.full(100, 5.0))])
    deps = {"shared": {"tenants": ["a", "b"], "duration_s": 10.0, "status": "completed", "kind": "shared"}}
    s = summarize(reqs, SCENARIO, deps, 3.6)
    assert math.isnan(s.deployments.iloc[0]["busy_fraction"])
    assert set(s.chargeback["compute_counter"]) == {cost.PER_REQUEST}


def test_cost_per_good_inference_when_some_miss_or_fail():
    lat = np.full(100, 5.0)
    lat[:20] = 80.0  # 20 over the 50 ms SLA
    ok = np.ones(100, dtype=bool)
    ok[20:30] = False  # 10 failed
    reqs = records("a", "solo-a", lat, ok)
    deps = {"solo-a": {"tenants": ["a"], "duration_s": 10.0, "status": "completed", "kind": "solo"}}
    s = summarize(reqs, SCENARIO, deps, 3.6)
    r = s.rows.iloc[0]
    assert r["good"] == 70 and r["goodput_rps"] == pytest.approx(7.0)
    dollars = 3.6 * 10 / 3600
    assert r["cost_per_million_usd"] == pytest.approx(dollars / 90 * 1e6)  # completed, late ones included
    assert r["cost_per_million_good_usd"] == pytest.approx(dollars / 70 * 1e6)


def test_a_replicated_group_costs_every_replica_and_serves_every_replica():
    reqs = records("a", "pair", np.full(100, 5.0))
    deps = {"pair": {"tenants": ["a"], "duration_s": 10.0, "status": "completed", "kind": "group", "replicas": 3,
                     "usd_per_hour": 1.0}}  # fmt: skip
    d = summarize(reqs, SCENARIO, deps, 3.6).deployments.iloc[0]
    assert d["servers"] == 3 and d["usd_per_hour"] == 1.0  # priced as its own instance, not the scenario's
    assert d["cost_usd"] == pytest.approx(3 * 1.0 * 10 / 3600)
    assert d["cost_per_million_good_usd"] == pytest.approx(1.0 * 10 / 3600 / 100 * 1e6)


CAPACITY = pd.DataFrame(
    [
        # solo a holds 4x its 10 rps (fails at 5x), solo b 2x its 20 rps (fails at 2.5x), shared 1.5x (fails at 2x)
        {"deployment": "solo-a", "kind": "solo", "tenant": "a", "scale": 4.0, "upper": 5.0, "rate_rps": 10.0},
        {"deployment": "solo-b", "kind": "solo", "tenant": "b", "scale": 2.0, "upper": 2.5, "rate_rps": 20.0},
        {"deployment": "shared", "kind": "shared", "tenant": "a", "scale": 1.5, "upper": 2.0, "rate_rps": 10.0},
        {"deployment": "shared", "kind": "shared", "tenant": "b", "scale": 1.5, "upper": 2.0, "rate_rps": 20.0},
    ]
)


def test_cost_at_capacity_with_its_interval_from_the_bracket():
    at = cost_at_capacity(CAPACITY, 3.6, {"a": 0.25, "b": 0.75})
    per_m = 3.6 / (45.0 * 3600) * 1e6  # shared carries 1.5 x 30 rps
    assert at.shared_per_million_usd == pytest.approx(per_m)
    assert at.shared_low_usd == pytest.approx(3.6 / (60.0 * 3600) * 1e6)  # at the failing scale, 2 x 30 rps
    # dedicated: a needs 10/40 of a server, b 20/40, for 30 rps
    dedicated = 3.6 * (10 / 40 + 20 / 40) / (30 * 3600) * 1e6
    assert at.dedicated_per_million_usd == pytest.approx(dedicated)
    assert at.savings == pytest.approx(1 - per_m / dedicated)
    assert at.savings_low < at.savings < at.savings_high
    assert at.savings_low == pytest.approx(1 - per_m / (3.6 * (10 / 50 + 20 / 50) / (30 * 3600) * 1e6))
    a = at.tenants[(at.tenants["search"] == "shared") & (at.tenants["tenant"] == "a")].iloc[0]
    assert a["share"] == 0.25 and a["capacity_rps"] == 15.0
    assert a["cost_per_million_usd"] == pytest.approx(0.25 * 3.6 / (15.0 * 3600) * 1e6)
    assert a["cost_per_million_low_usd"] == pytest.approx(0.25 * 3.6 / (20.0 * 3600) * 1e6)


def test_a_search_that_never_failed_has_an_open_interval_and_none_without_a_price():
    open_ended = CAPACITY.assign(upper=np.nan)
    at = cost_at_capacity(open_ended, 3.6)
    assert at.shared_low_usd == 0.0 and math.isfinite(at.shared_per_million_usd)
    # every search stopped at its ceiling: the "saving" would be 1 - 1/N by construction, so none is computed
    assert math.isnan(at.savings) and set(at.unbracketed) == {"solo-a", "solo-b", "shared"}
    assert cost_at_capacity(CAPACITY, None) is None


# -- [[deployments]] ------------------------------------------------------------------------------------------
def groups_scenario(*groups, baselines: bool = False, closed: str | None = None) -> dict:
    data = copy.deepcopy(SCENARIO)
    data["tenants"].append(copy.deepcopy(data["tenants"][0]) | {"name": "c"})
    if closed:
        data["tenants"][-1]["load"] = {"arrival": "closed", "concurrency": 2}
    data["run"] = {**data["run"], "baselines": baselines}
    data["deployments"] = list(groups)
    return data


def test_groups_are_planned_with_their_kind_and_a_replica_carries_its_share():
    data = groups_scenario({"name": "ab", "tenants": ["a", "b"]}, {"name": "hot", "tenants": ["c"], "replicas": 2})
    scenario = parse(data, "g.toml")
    deployments = plan(scenario)
    assert [(d.name, d.kind, d.replicas) for d in deployments] == [
        ("ab", DeploymentKind.GROUP, 1),
        ("hot", DeploymentKind.GROUP, 2),
    ]
    assert scenario_for(scenario, deployments[1]).tenant("c").load.rate == 5.0
    with_baselines = plan(parse(groups_scenario(*data["deployments"], baselines=True), "g.toml"))
    assert [d.name for d in with_baselines] == ["ab", "hot", "shared", "solo-a", "solo-b", "solo-c"]


@pytest.mark.parametrize(
    ("groups", "field", "reason"),
    [
        ([{"name": "ab", "tenants": ["a", "b"]}], "deployments", "tenant 'c' is in no deployment"),
        (
            [{"name": "ab", "tenants": ["a", "b"]}, {"name": "bc", "tenants": ["b", "c"]}],
            "deployments[1].tenants[0]",
            "already in deployment 'ab'",
        ),
        ([{"name": "all", "tenants": ["a", "b", "c", "zed"]}], "deployments[0].tenants[3]", "no tenant 'zed'"),
        ([{"name": "all", "tenants": ["a", "b", "cc"]}], "deployments[0].tenants[2]", "did you mean 'c'?"),
        ([{"name": "all", "tenants": ["a", "b", "c"], "replicas": 0}], "deployments[0].replicas", "must be >= 1"),
        (
            [{"name": "x", "tenants": ["a"]}, {"name": "x", "tenants": ["b", "c"]}],
            "deployments[1].name",
            "duplicate deployment name 'x'",
        ),
        ([{"name": "all", "tenants": []}], "deployments[0].tenants", "at least 1"),
        ([{"name": "all", "tenants": ["a", "b", "c"], "colour": "red"}], "deployments[0].colour", "unknown key"),
    ],
)
def test_bad_groups_are_one_line_naming_the_field(groups, field, reason):
    with pytest.raises(InputError) as err:
        parse(groups_scenario(*groups), "g.toml")
    assert err.value.field == field and reason in err.value.reason, str(err.value)


def test_a_group_may_not_take_a_baselines_name_and_closed_loops_do_not_replicate():
    with pytest.raises(InputError, match="is a baseline's name"):
        parse(groups_scenario({"name": "shared", "tenants": ["a", "b", "c"]}, baselines=True), "g.toml")
    with pytest.raises(InputError, match="closed loop"):
        parse(groups_scenario({"name": "all", "tenants": ["a", "b", "c"], "replicas": 2}, closed="c"), "g.toml")


def test_a_group_priced_as_an_unknown_instance_is_bad_input():
    from perseus.checks import group_prices

    data = groups_scenario({"name": "all", "tenants": ["a", "b", "c"], "instance": "nope.large"})
    with pytest.raises(InputError) as err:
        group_prices(parse(data, "g.toml"), "g.toml")
    assert err.value.field == "deployments[0].instance" and "not in the bundled catalog" in err.value.reason
    data["deployments"][0]["instance"] = "g5.xlarge"
    assert group_prices(parse(data, "g.toml"), "g.toml")["g5.xlarge"].usd_per_hour > 0
