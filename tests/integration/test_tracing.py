"""`perseus run --trace-rate 1` on a real tritonserver: every request's server timeline joins its record.

The smoke scenario's two tiny tenants, shared deployment only, a few seconds.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perseus import results
from perseus.analysis import spans

pytestmark = pytest.mark.integration

SMOKE = Path(__file__).resolve().parents[2] / "scenarios" / "smoke.toml"
# The six components (handling_ms, Triton's parse-and-route step, is left out on purpose).
NAMED = ("net_in_ms", "queue_ms", "compute_input_ms", "compute_infer_ms", "compute_output_ms", "net_out_ms")


def test_a_traced_run_joins_every_request_and_its_parts_add_up(tmp_path):
    out = tmp_path / "traced"
    cmd = [sys.executable, "-m", "perseus.cli", "run", str(SMOKE), "--no-baselines", "--trace-rate", "1"]
    proc = subprocess.run(
        [*cmd, "--duration", "3", "--warmup", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    requests = pd.read_parquet(out / "shared" / results.REQUESTS)
    traced = pd.read_parquet(out / "shared" / results.SPANS)
    assert list(traced.columns) == list(spans.SPAN_COLUMNS)
    # trace_rate 1: every request, warm-up included, was traced and joined exactly once.
    ids = {spans.request_id(t, s) for t, s in zip(requests["tenant"], requests["scheduled_s"], strict=True)}
    assert len(traced) == len(requests) > 50
    assert set(traced["request_id"]) == ids
    # The components add up to the client's service time within 0.5 ms at p50.
    gap = (traced["service_ms"] - traced[list(NAMED)].sum(axis=1)).abs()
    assert float(np.median(gap)) < 0.5
    # One clock for client and server: the server received each request after the client sent it,
    # and began computing before the client had the answer.
    assert (traced["recv_end_s"] > traced["sent_s"]).all()
    assert (traced["compute_start_s"] < traced["done_s"]).all()
    assert (traced["batch_size"] >= 1).all()
    assert {"vision", "series"} == set(traced["tenant"])
