"""Sharding a deployment's load over workers: every arrival once, users split, nothing made up."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from perseus.load.shards import make_plan, scenario_from_plan, shard_concurrency, shard_loads, shard_schedule


@given(n=st.integers(0, 500), shards=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_shards_partition_the_schedule(n, shards, seed):
    schedule = np.sort(np.random.default_rng(seed).uniform(0, 10, n))
    parts = [shard_schedule(schedule, i, shards) for i in range(shards)]
    assert sum(len(p) for p in parts) == n
    assert np.array_equal(np.sort(np.concatenate(parts)), schedule)  # each arrival exactly once
    assert all(np.all(np.diff(p) >= 0) for p in parts)  # each shard stays in time order
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1  # balanced


@given(concurrency=st.integers(1, 200), shards=st.integers(1, 16))
def test_closed_loop_users_are_split_evenly(concurrency, shards):
    parts = [shard_concurrency(concurrency, i, shards) for i in range(shards)]
    assert sum(parts) == concurrency
    assert max(parts) - min(parts) <= 1


@dataclass
class _Load:
    """The fields of perseus.load.engine.TenantLoad that sharding reads and writes (no Locust import here)."""

    tenant: str
    arrival: str
    schedule: np.ndarray | None = None
    concurrency: int = 1

    @property
    def open_loop(self) -> bool:
        return self.arrival != "closed"


def _load(tenant: str, arrival: str, **kw) -> _Load:
    return _Load(tenant, arrival, **kw)


def test_a_shard_without_closed_loop_users_leaves_that_tenant_out():
    def loads():
        return [
            _load("open", "poisson", schedule=np.arange(5.0)),
            _load("closed", "closed", concurrency=1),
        ]

    first, second = shard_loads(loads(), 0, 2), shard_loads(loads(), 1, 2)
    assert [t.tenant for t in first] == ["open", "closed"]
    assert [t.tenant for t in second] == ["open"]
    assert list(first[0].schedule) == [0.0, 2.0, 4.0]
    assert list(second[0].schedule) == [1.0, 3.0]


def test_one_shard_is_the_whole_load():
    load = _load("open", "constant", schedule=np.arange(7.0))
    (only,) = shard_loads([load], 0, 1)
    assert list(only.schedule) == list(np.arange(7.0))
    assert shard_concurrency(5, 0, 1) == 5


def test_a_worker_gets_the_trace_file_in_the_plan(tmp_path):
    """A worker on another machine has none of the master's files: the plan carries the trace."""
    from perseus.plan import Deployment
    from perseus.scenario import parse

    trace = tmp_path / "master" / "bursty.csv"
    trace.parent.mkdir()
    trace.write_text("timestamp_s\n0.0\n0.1\n0.5\n")
    raw = {
        "name": "t",
        "tenants": [
            {"name": "a", "model": "m", "sla_ms": 10, "load": {"arrival": "trace", "rate": 5, "trace": str(trace)}}
        ],
    }
    scenario = parse(raw, "scenario.toml")
    plan = make_plan(scenario, Deployment("shared", ("a",)), "http://127.0.0.1:1", {"a": "a"})
    plan = {**plan, "token": "t", "shard": 0, "shards": 1, "t0": 0.0}  # as the master sends it
    trace.unlink()  # gone, as on another machine
    worker_dir = tmp_path / "worker"
    worker_dir.mkdir()
    rebuilt = scenario_from_plan(plan, worker_dir)
    shipped = rebuilt.tenant("a").load.trace
    assert shipped.startswith(str(worker_dir))
    assert Path(shipped).read_text() == "timestamp_s\n0.0\n0.1\n0.5\n"
    assert rebuilt.model_dump(exclude={"tenants"}) == scenario.model_dump(exclude={"tenants"})


def _sent_plan(tmp_path):
    from perseus.plan import Deployment
    from perseus.scenario import parse

    raw = {"name": "t", "tenants": [{"name": "a", "model": "m", "sla_ms": 10, "load": {"rate": 5}}]}
    plan = make_plan(parse(raw, "s.toml"), Deployment("shared", ("a",)), "http://127.0.0.1:1", {"a": "a"})
    return {**plan, "token": "t", "shard": 0, "shards": 2, "t0": 0.0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda p: p["traces"].update({"../../etc/x": "timestamp_s\n0\n"}), "not a tenant of its scenario"),
        (lambda p: p.update(scenario=p["scenario"].replace('"name":"a"', '"name":"../a"')), "scenario"),
        (lambda p: p["deployment"].update(name="../../tmp/x"), "deployment.name"),
        (lambda p: p["deployment"].update(tenants=["b"]), "not a tenant of its scenario: 'b'"),
        (lambda p: p["served"].update({"zed": "m"}), "served"),
        (lambda p: p.update(shard=2), "shard 2 of 2"),
        (lambda p: p.update(url="file:///etc/passwd"), "url"),
        (lambda p: p.update(grpc_address="127.0.0.1:1 --evil"), "grpc_address"),
        (lambda p: p.update(extra=1), "extra"),
    ],
)
def test_a_worker_refuses_a_bad_plan_before_writing_anything(tmp_path, change, reason):
    from perseus.load.shards import PlanError

    plan = _sent_plan(tmp_path)
    change(plan)
    folder = tmp_path / "worker"
    folder.mkdir()
    with pytest.raises(PlanError, match=re.escape(reason)):
        scenario_from_plan(plan, folder)
    assert list(folder.iterdir()) == [] and not (tmp_path / "etc").exists()


def test_the_plan_carries_the_servers_grpc_address(tmp_path):
    from perseus.load.shards import check_plan

    plan = _sent_plan(tmp_path)
    assert plan["grpc_address"] == ""  # no gRPC endpoint given: HTTP tenants only
    checked, _ = check_plan({**plan, "grpc_address": "127.0.0.1:8001"})
    assert checked.grpc_address == "127.0.0.1:8001"
