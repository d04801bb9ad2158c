"""Chargeback by execution, not by request, on a real server: a dynamically batched tenant beside one that
is not. Triton's /metrics credit every request of a batch with the whole execution's compute time, so
the per-request sum counts a batch once per request; the statistics API's batch_stats count it once.
"""

from __future__ import annotations

import pandas as pd
import pytest

from perseus import results
from perseus.analysis.cost import EXECUTION
from tests.conftest import REPO_ROOT, run_scenario_text

pytestmark = pytest.mark.integration

SCENARIO = f"""
name = "batching"
[server]
model_repository = "{REPO_ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = 4
warmup_s = 1
baselines = false
min_duration_s = 1
min_requests = 20
[pricing]
instance = "g4dn.xlarge"
[[tenants]]
name = "batched"
model = "resnet_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 300
[tenants.server]
dynamic_batching = true
max_queue_delay_us = 20000
[[tenants]]
name = "single"
model = "resnet_tiny"
sla_ms = 500
sla_percentile = 90
[tenants.load]
arrival = "poisson"
rate = 300
[tenants.server]
dynamic_batching = false
"""


@pytest.fixture(scope="module")
def batching(tmp_path_factory):
    return run_scenario_text(tmp_path_factory.mktemp("batching"), SCENARIO)


def test_a_batch_counts_once_in_the_execution_counters(batching):
    server = pd.read_csv(batching / results.SERVER_CSV).set_index("tenant")
    assert server.loc["batched", "avg_batch"] > 1.5  # batches did form
    assert server.loc["single", "avg_batch"] == pytest.approx(1.0, abs=0.05)
    # per request, a batch of b counts b times; per execution, once
    ratio = server["compute_s"] / server["exec_compute_s"]
    assert ratio["batched"] > 1.5
    assert ratio["single"] == pytest.approx(1.0, rel=0.15)


def test_the_batching_tenants_share_drops_and_the_counters_are_named(batching):
    server = pd.read_csv(batching / results.SERVER_CSV).set_index("tenant")
    per_request = server["compute_s"] / server["compute_s"].sum()
    charge = pd.read_csv(batching / results.CHARGEBACK_CSV).set_index("tenant")
    assert set(charge["compute_counter"]) == {EXECUTION}
    assert charge.loc["batched", "compute_share"] < per_request["batched"] - 0.05
    assert charge["compute_share"].sum() == pytest.approx(1.0)
    assert "execution (statistics API)" in (batching / results.REPORT_MD).read_text()
