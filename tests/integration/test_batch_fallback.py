"""A batched execution that fails is rerun request by request, and said, on a real server.

The model here is a real ONNX graph that runs one request at a time but not a batch of them (it
reshapes its input to a single row), served by perseus's backend model with dynamic batching: every
execution of two or more requests fails in onnxruntime, is rerun one request at a time (so no request
fails), and each such fallback is printed in server.log, counted per tenant in the manifest and
named in the report, instead of the batches silently turning into single runs.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pandas as pd
import pytest
from onnx import TensorProto, helper, numpy_helper

from perseus import results
from perseus.server import backend_log
from tests.conftest import REPO_ROOT, run_scenario_text

pytestmark = pytest.mark.integration

CONFIG = """name: "onerow"
backend: "python"
max_batch_size: 8
input { name: "x" data_type: TYPE_FP32 dims: [ 4 ] }
output { name: "y" data_type: TYPE_FP32 dims: [ 4 ] }
instance_group { count: 1 kind: KIND_CPU }
dynamic_batching { max_queue_delay_microseconds: 50000 }
"""
SCENARIO = """
name = "fallback"
[server]
model_repository = "repo"
device = "cpu"
[run]
duration_s = 2
warmup_s = 0.5
baselines = false
min_duration_s = 1
min_requests = 10
[[tenants]]
name = "rows"
model = "onerow"
sla_ms = 1000
sla_percentile = 90
[tenants.load]
arrival = "constant"
rate = 100
"""


def one_row_model() -> onnx.ModelProto:
    """y = reshape(x, [1, 4]): right for one request of batch 1, an error for a batch of several."""
    shape = numpy_helper.from_array(np.array([1, 4], dtype=np.int64), name="shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "onerow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        initializer=[shape],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def fallback_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("fallback")
    model = base / "repo" / "onerow"
    (model / "1").mkdir(parents=True)
    (model / "config.pbtxt").write_text(CONFIG)
    shutil.copy(REPO_ROOT / "perseus" / "models" / "backend_model.py", model / "1" / "model.py")
    onnx.save(one_row_model(), model / "1" / "model.onnx")
    return run_scenario_text(base, SCENARIO)  # no recipe.toml: nothing is built over it


def test_a_failed_batch_is_rerun_one_by_one_counted_and_reported(fallback_run):
    summary = pd.read_csv(fallback_run / results.SUMMARY_CSV).set_index("tenant")
    assert summary.loc["rows", "errors"] == 0  # every request answered, one at a time
    log = fallback_run / "shared" / results.SERVER_LOG
    lines = [line for line in log.read_text().splitlines() if backend_log.FALLBACK_MARK in line]
    assert lines and all('"requests": ' in line for line in lines)
    assert "Reshape" in lines[0]  # onnxruntime's own reason is kept
    counted = json.loads((fallback_run / results.MANIFEST).read_text())["deployments"]["shared"]["batch_fallbacks"]
    assert counted == {"rows": len(lines)} and len(lines) >= 5  # 100 req/s with a 50 ms batching window
    report = (fallback_run / results.REPORT_MD).read_text()
    assert f"deployment shared, tenant rows: {len(lines)} batched executions failed and were rerun" in report


def test_the_backend_and_the_reader_agree_on_the_mark():
    source = (REPO_ROOT / "perseus" / "models" / "backend_model.py").read_text()
    assert f'FALLBACK_MARK = "{backend_log.FALLBACK_MARK}"' in source
