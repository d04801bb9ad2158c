"""Strategies in the plan and the embedded-vs-external comparison table (pure)."""

import json

import pandas as pd

from perseus.analysis.strategies import compare_strategies
from perseus.plan import plan
from perseus.scenario import parse


def scenario(strategies):
    return parse(
        {
            "name": "x",
            "run": {"strategies": strategies},
            "tenants": [
                {"name": n, "model": "m", "sla_ms": 10, "load": {"arrival": "poisson", "rate": 1}} for n in ("a", "b")
            ],
        },
        "x.toml",
    )


def test_embedded_adds_one_deployment_per_tenant():
    names = [(d.name, d.strategy) for d in plan(scenario(["external", "embedded"]))]
    assert names == [
        ("shared", "external"), ("solo-a", "external"), ("solo-b", "external"),
        ("embedded-a", "embedded"), ("embedded-b", "embedded"),
    ]  # fmt: skip
    assert [d.name for d in plan(scenario(["embedded"]))] == ["embedded-a", "embedded-b"]


def test_comparison_pairs_solo_with_embedded_and_reads_cpu():
    rows = pd.DataFrame(
        [
            {"deployment": d, "tenant": "a", "throughput_rps": 10.0, "p50_ms": p, "p99_ms": 2 * p, "sla_met": True,
             "cost_per_million_usd": 1.0}
            for d, p in (("solo-a", 5.0), ("embedded-a", 3.0))
        ]
    )  # fmt: skip
    label = json.dumps({"process": "loadgen"})
    telemetry = pd.DataFrame(
        [
            {
                "deployment": "embedded-a",
                "source": "host",
                "metric": "cpu_percent",
                "labels": label,
                "t_s": t,
                "value": v,
            }
            for t, v in ((-1.0, 99.0), (0.5, 40.0), (1.5, 60.0))
        ]
    )
    kinds = {"solo-a": {"kind": "solo", "tenants": ["a"]}, "embedded-a": {"kind": "embedded", "tenants": ["a"]}}
    table = compare_strategies(rows, telemetry, kinds).set_index("strategy")
    assert table.loc["embedded", "p50_ms"] == 3.0 and table.loc["external", "deployment"] == "solo-a"
    assert table.loc["embedded", "loadgen_cpu_percent"] == 50.0  # warm-up sample left out
    assert table.loc["embedded", "server_cpu_percent"] == 0.0


def test_no_embedded_no_table():
    rows = pd.DataFrame([{"deployment": "shared", "tenant": "a", "throughput_rps": 1.0, "p50_ms": 1.0, "p99_ms": 1.0,
                          "sla_met": True, "cost_per_million_usd": 1.0}])  # fmt: skip
    assert compare_strategies(rows, None, {"shared": {"kind": "shared", "tenants": ["a"]}}).empty
