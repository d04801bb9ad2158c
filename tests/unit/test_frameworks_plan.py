"""[run] servers in the plan, and the frameworks-side-by-side table (pure)."""

import json
import math

import pandas as pd
import pytest

from perseus.analysis.frameworks import compare_frameworks
from perseus.errors import InputError
from perseus.plan import plan, scenario_for
from perseus.scenario import parse


def scenario(servers, **server):
    return parse(
        {
            "name": "x",
            "server": server,
            "run": {"servers": servers, "repeat": 2, "strategies": ["external", "embedded"]},
            "tenants": [
                {"name": n, "model": "m", "sla_ms": 10, "load": {"arrival": "poisson", "rate": 1}} for n in ("a", "b")
            ],
        },
        "x.toml",
    )


def test_every_external_deployment_once_per_kind_interleaved():
    s = scenario(["triton", "bentoml"])
    deployments = plan(s)
    first = [(d.name, d.server, d.layout) for d in deployments if d.trial == 1]
    assert first == [
        ("shared@triton", "triton", "shared"), ("shared@bentoml", "bentoml", "shared"),
        ("solo-a@triton", "triton", "solo-a"), ("solo-a@bentoml", "bentoml", "solo-a"),
        ("solo-b@triton", "triton", "solo-b"), ("solo-b@bentoml", "bentoml", "solo-b"),
        ("embedded-a", None, None), ("embedded-b", None, None),
    ]  # fmt: skip
    trial = next(d for d in deployments if d.name == "shared@bentoml-t2")
    assert (trial.base, trial.server) == ("shared@bentoml", "bentoml")
    assert scenario_for(s, trial).server.kind == "bentoml"
    assert s.server.kind == "triton"  # the scenario itself is left as it is


def test_without_servers_names_are_unchanged():
    assert [d.name for d in plan(scenario([])) if d.trial == 1][:2] == ["shared", "solo-a"]


@pytest.mark.parametrize(
    "servers, server, field",
    [
        (["mlserver", "mlserver"], {}, "run.servers"),
        (["triton", "mlserver"], {"launcher": "remote", "url": "http://127.0.0.1:9"}, "run.servers"),
        (["triton", "bentoml"], {"device": "gpu"}, "run.servers"),
        (["torchserve"], {}, "run.servers[0]"),
    ],
)
def test_bad_servers(servers, server, field):
    with pytest.raises(InputError) as err:
        scenario(servers, **server)
    assert err.value.field == field


def _cpu(deployment: str, value: float) -> dict:
    label = json.dumps({"process": "server"})
    return {
        "deployment": deployment,
        "source": "host",
        "metric": "cpu_percent",
        "labels": label,
        "t_s": 1.0,
        "value": value,
    }


def test_the_table_puts_kinds_side_by_side_with_ratios_to_triton():
    rows = pd.DataFrame(
        [
            {"deployment": d, "tenant": "a", "throughput_rps": 10.0, "p50_ms": p50, "p99_ms": p99, "sla_met": p99 < 30,
             "cost_per_million_good_usd": 2.0}
            for d, p50, p99 in (("shared@triton", 2.0, 10.0), ("shared@mlserver", 5.0, 40.0), ("shared-t2", 1.0, 1.0))
        ]
    )  # fmt: skip
    telemetry = pd.DataFrame([_cpu("shared@triton", 20.0), _cpu("shared@mlserver", 35.0)])
    records = {
        "shared@triton": {"server": "triton", "layout": "shared", "trial": 1},
        "shared@mlserver": {"server": "mlserver", "layout": "shared", "trial": 1},
        "shared-t2": {"server": None, "trial": 2},
    }
    table = compare_frameworks(rows, telemetry, records).set_index("server")
    assert list(table.index) == ["triton", "mlserver"]
    assert table.loc["mlserver", "p50_vs_triton"] == 2.5
    assert table.loc["mlserver", "p99_vs_triton"] == 4.0
    assert table.loc["triton", "p99_vs_triton"] == 1.0
    assert table.loc["mlserver", "server_cpu_percent"] == 35.0
    assert not table.loc["mlserver", "sla_met"]


def test_no_triton_no_ratio_and_no_comparison_no_table():
    rows = pd.DataFrame(
        [{"deployment": "shared@bentoml", "tenant": "a", "throughput_rps": 1.0, "p50_ms": 1.0, "p99_ms": 2.0,
          "sla_met": True, "cost_per_million_good_usd": 1.0}]
    )  # fmt: skip
    table = compare_frameworks(rows, None, {"shared@bentoml": {"server": "bentoml", "layout": "shared"}})
    assert math.isnan(table.loc[0, "p99_vs_triton"])
    assert compare_frameworks(rows, None, {"shared@bentoml": {"kind": "shared"}}).empty
