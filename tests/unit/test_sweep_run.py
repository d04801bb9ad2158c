"""The sweep pipeline's pure parts: a point's result record from its requests, and what may be resumed."""

from __future__ import annotations

import copy
import json
import math
import tomllib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from perseus import checks, results
from perseus.errors import InputError
from perseus.kinds import Status
from perseus.manifest import DeploymentRecord, Manifest
from perseus.plan import Deployment
from perseus.pricing.catalog import lookup
from perseus.scenario import parse
from perseus.sweep import run as sweep
from perseus.sweep.design import Point, apply

MODELS = Path(__file__).resolve().parents[2] / "model_repository"

SCENARIO = tomllib.loads(
    """
name = "t"
[run]
duration_s = 10
min_duration_s = 1
min_requests = 10
[pricing]
instance = "g4dn.xlarge"
[[tenants]]
name = "a"
model = "resnet_tiny"
sla_ms = 50
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 10
[sweep]
objective_percentile = 95
[sweep.factors]
"load.level" = ["light", "high"]
"""
)


def _requests(n: int, failed: int) -> pa.Table:
    latency = [float(i + 1) for i in range(n)]  # 1 .. n ms
    ok = [i < n - failed for i in range(n)]
    rows = {
        "tenant": ["a"] * n, "model": ["resnet_tiny"] * n, "deployment": ["p001-x"] * n,
        "scheduled_s": [i * 0.1 for i in range(n)], "sent_s": [i * 0.1 for i in range(n)],
        "done_s": [i * 0.1 + 0.001 for i in range(n)], "latency_ms": latency, "service_ms": latency,
        "ok": ok, "error": [None if k else "HTTP 500" for k in ok], "warmup": [False] * n,
    }  # fmt: skip
    return pa.table(rows, schema=results.REQUEST_SCHEMA)


def _manifest(run_dir: Path, scenario, name: str, usd_per_hour: float) -> DeploymentRecord:
    """A sweep folder's manifest holding one completed point, priced at ``usd_per_hour``."""
    manifest = Manifest.new(
        scenario_file=None,
        requested={},
        effective=scenario.model_dump(mode="json"),
        deployments=[Deployment(name, ("a",))],
        duration_s=10.0,
        price={**lookup("aws", "g4dn.xlarge", "us-east-1", "on-demand").__dict__, "usd_per_hour": usd_per_hour},
        gpus=[],
        gpu_note=None,
        command="perseus sweep",
        versions={},
        host={},
        perseus_version="test",
    )
    record = manifest.finish(name, status=Status.COMPLETED)
    manifest.save(run_dir)
    return record


def test_measure_counts_failures_as_infinitely_late(tmp_path):
    scenario = parse(copy.deepcopy(SCENARIO), "x.toml")
    point = Point(1, "p001-x", {"load.level": "high"})
    at_point = apply(scenario, point.settings, scenario.sweep.effective_levels())
    (tmp_path / point.name).mkdir()
    pq.write_table(_requests(100, failed=10), tmp_path / point.name / results.REQUESTS)
    entry = _manifest(tmp_path, scenario, point.name, 3.6)
    record = sweep.measure(tmp_path, point, at_point, entry)
    assert record["scale"] == 2.0 and record["status"] == "completed"
    a = record["tenants"]["a"]
    assert math.isinf(a["objective_ms"])  # p95 falls among the 10 failures
    assert a["p99_ms"] < 100  # the summary's p99 is over successful requests only
    assert a["requests"] == 100 and a["errors"] == 10 and a["sla_met"] is False
    assert record["deployment"]["cost_per_million_usd"] == 3.6 * 10 / 3600 / 90 * 1e6
    assert record["servers"]["a"]["instances"] is None
    # numbers and booleans survive the JSON round trip as such (not as their str())
    results.write_json_atomic(tmp_path / "r.json", record)
    back = json.loads((tmp_path / "r.json").read_text())
    assert back["tenants"]["a"]["sla_met"] is False and isinstance(back["tenants"]["a"]["requests"], int)


def test_measure_of_a_point_without_records(tmp_path):
    scenario = parse(copy.deepcopy(SCENARIO), "x.toml")
    point = Point(2, "p002-y", {"load.level": "light"})
    entry = DeploymentRecord(tenants=["a"], status=Status.FAILED, reason="boom", duration_s=0)
    record = sweep.measure(tmp_path, point, scenario, entry)
    assert record["status"] == "failed" and record["reason"] == "boom" and record["tenants"] == {}


def test_first_difference_names_the_field():
    a = {"run": {"duration_s": 5, "seed": 1}, "tenants": [{"name": "a", "sla_ms": 5}]}
    assert sweep._first_difference(a, copy.deepcopy(a)) is None
    b = copy.deepcopy(a)
    b["tenants"][0]["sla_ms"] = 6
    assert sweep._first_difference(a, b) == "tenants[0].sla_ms"
    b = copy.deepcopy(a)
    b["run"]["duration_s"] = 3
    assert sweep._first_difference(a, b) == "run.duration_s"
    assert sweep._first_difference(a, {**a, "extra": 1}) == "extra"


def _prepared(sweep_table: dict) -> checks.Prepared:
    data = copy.deepcopy(SCENARIO)
    data["sweep"] = sweep_table
    scenario = parse(data, "x.toml")
    return checks.Prepared(Path("x.toml"), data, scenario, MODELS, None, [], None, False)


def test_check_names_an_unknown_tenant():
    with pytest.raises(InputError) as info:
        sweep.check(_prepared({"factors": {"tenants.b.server.instances": [1, 2]}}))
    assert str(info.value) == "x.toml: sweep.factors.\"tenants.b.server.instances\": no tenant 'b' (tenants: a)"


def test_check_names_the_point_a_model_cannot_take():
    with pytest.raises(InputError) as info:
        sweep.check(_prepared({"factors": {"tenants.a.server.max_batch_size": [8, 0],
                                           "tenants.a.server.dynamic_batching": [True]}}))  # fmt: skip
    text = str(info.value)
    assert text.startswith("x.toml: sweep: point p002-")
    assert "tenants[0].server.dynamic_batching: model 'resnet_tiny' has max_batch_size 0, so it cannot batch" in text


def test_check_returns_the_design():
    points = sweep.check(_prepared({"factors": {"tenants.*.server.instances": [1, 2], "load.level": ["light"]}}))
    assert [p.settings["tenants.*.server.instances"] for p in points] == [1, 2]
