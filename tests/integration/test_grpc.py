"""gRPC tenants on a real tritonserver, open and closed loop, beside an HTTP tenant on the same server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perseus import results
from tests.conftest import REPO_ROOT, run_scenario_text

pytestmark = pytest.mark.integration

DURATION, WARMUP, RATE = 3.0, 0.5, 20
SCENARIO = f"""
name = "protocols"
[server]
model_repository = "{REPO_ROOT / "model_repository"}"
device = "cpu"
[run]
duration_s = {DURATION}
warmup_s = {WARMUP}
baselines = false
min_duration_s = 1
min_requests = 20
[[tenants]]
name = "rest"
model = "resnet_tiny"
sla_ms = 500
load = {{ arrival = "poisson", rate = {RATE} }}
[[tenants]]
name = "rpc"
model = "resnet_tiny"
sla_ms = 500
load = {{ arrival = "poisson", rate = {RATE}, protocol = "grpc" }}
[[tenants]]
name = "rpc-closed"
model = "lstm_tiny"
sla_ms = 500
batch = 2
load = {{ arrival = "closed", concurrency = 2, protocol = "grpc" }}
[[tenants]]
name = "rpc-large"
model = "resnet_tiny"
sla_ms = 500
batch = 8
# 8 x 3 x 32 x 32 float32 = 98,304 bytes per request, beyond HTTP/2's default frame (16 KiB) and window
# (64 KiB): sent as one frame only because Triton's SETTINGS raise both to 4 MiB, which the transport
# must read and apply (the splitting and window waits themselves: tests/unit/test_grpc_wire.py).
load = {{ arrival = "closed", concurrency = 1, protocol = "grpc" }}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return run_scenario_text(tmp_path_factory.mktemp("grpc"), SCENARIO)


def test_summary_names_each_tenants_protocol(run_dir):
    rows = pd.read_csv(run_dir / results.SUMMARY_CSV).set_index("tenant")
    assert rows["protocol"].to_dict() == {"rest": "http", "rpc": "grpc", "rpc-closed": "grpc", "rpc-large": "grpc"}
    assert (rows["errors"] == 0).all()
    # Open loop over gRPC sends its whole seeded schedule, as HTTP does: exactly rate x duration measured.
    assert rows.loc["rpc", "requests"] == rows.loc["rest", "requests"] == RATE * DURATION
    assert rows.loc["rpc-closed", "requests"] > 0
    assert rows.loc["rpc-large", "requests"] > 0
    report = (run_dir / results.REPORT_MD).read_text(encoding="utf-8")
    assert "| shared | rpc | resnet_tiny | grpc |" in report
    assert "| shared | rest | resnet_tiny | http |" in report


def test_grpc_records_mean_what_http_records_mean(run_dir):
    r = results.read_requests(run_dir).to_pandas()
    for tenant in ("rpc", "rpc-closed", "rpc-large"):
        rows = r[r["tenant"] == tenant]
        assert len(rows) and rows["ok"].all(), rows.loc[~rows["ok"], "error"].head().tolist()
        assert (rows["sent_s"] >= rows["scheduled_s"]).all()
        assert (rows["done_s"] > rows["sent_s"]).all()
        # Latency counts from the scheduled time, service time from the send, for either protocol.
        assert np.allclose(rows["latency_ms"], (rows["done_s"] - rows["scheduled_s"]) * 1e3)
        assert np.allclose(rows["service_ms"], (rows["done_s"] - rows["sent_s"]) * 1e3)
    rpc = r[r["tenant"] == "rpc"]
    assert rpc["scheduled_s"].is_unique  # every arrival recorded once
    assert len(rpc) == RATE * (DURATION + WARMUP)
    closed = r[(r["tenant"] == "rpc-closed") & ~r["warmup"]]
    assert closed["scheduled_s"].between(0, DURATION, inclusive="left").all()  # a closed loop stops on time


def test_the_server_counted_the_grpc_requests(run_dir):
    # Triton's own counters (/metrics), not the client's records: the requests reached the server.
    server = pd.read_csv(run_dir / results.SERVER_CSV).set_index("tenant")
    assert server.loc["rpc", "inferences_per_s"] == pytest.approx(RATE, rel=0.3)
    assert server.loc["rpc-closed", "inferences_per_s"] > 0
