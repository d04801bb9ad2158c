"""Dispatch without a spin keeps the records' meaning: the same seeded schedule, each request recorded once.

The child process (dispatch_child.py) sends one seeded Poisson schedule through the real LoadRun to a
real tritonserver, once with the spin-wait the engine used before and once with the timerfd waiter
it uses now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import service_pb2

from tests.conftest import REPO_ROOT, cli_env, kill_ours

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("dispatch")
    marker = tmp / "tmp"
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).with_name("dispatch_child.py")), str(tmp)],
            cwd=REPO_ROOT,
            env={**cli_env(marker), "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        kill_ours(marker)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_the_engine_waits_on_a_timerfd_now(runs):
    assert runs["spin"]["waiter"] == "SpinWait"
    assert runs["timerfd"]["waiter"] == "TimerFdWait"


def test_the_same_schedule_is_recorded_exactly_and_once_before_and_after(runs):
    schedule = np.asarray(runs["spin"]["schedule"])
    assert np.array_equal(schedule, runs["timerfd"]["schedule"])  # the seeded schedule itself
    assert len(schedule) == round(200.0 * 2.5)
    for name in ("spin", "timerfd"):
        run = runs[name]
        recorded = np.sort(np.asarray(run["scheduled_s"]))
        # Every arrival once, at exactly its scheduled time (bit for bit), no request twice or missing.
        assert np.array_equal(recorded, schedule), name
        assert all(run["ok"]), name
        assert list(run["warmup"]) == [s < 0 for s in run["scheduled_s"]], name


def test_no_request_is_sent_before_its_time(runs):
    for name in ("spin", "timerfd"):
        run = runs[name]
        scheduled, sent, done = (np.asarray(run[k]) for k in ("scheduled_s", "sent_s", "done_s"))
        assert (sent >= scheduled).all(), name
        assert (done > sent).all(), name


def test_a_tenants_schedule_does_not_depend_on_its_protocol(runs):
    http, grpc = runs["protocols"]["http"], runs["protocols"]["grpc"]
    assert http["schedule"] == grpc["schedule"]  # the same tensors drawn first, then the same arrivals
    assert grpc["path"] == "/inference.GRPCInferenceService/ModelInfer"
    request = service_pb2.ModelInferRequest.FromString(bytes.fromhex(grpc["body"]))
    assert request.model_name == "calibration"
    assert [(i.name, i.datatype, list(i.shape)) for i in request.inputs] == [("x", "FP32", [1])]
    assert [o.name for o in request.outputs] == ["y"]
    # The same tensor bytes as the HTTP body's binary part (which ends the body).
    assert bytes.fromhex(http["body"]).endswith(request.raw_input_contents[0])
