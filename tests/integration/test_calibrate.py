"""`perseus calibrate --quick` on a real tritonserver: the verdict table exists and its errors are finite.

Tolerances are for the benchmark (docs/benchmarks.md), not for CI: a few seconds per utilisation
checks the machinery, not the accuracy.
"""

import math
import subprocess
import sys

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def test_calibrate_quick_writes_a_finite_verdict_table(tmp_path):
    out = tmp_path / "cal"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "calibrate", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert proc.stdout.startswith(("PASS: ", "FAIL: "))  # the verdict in the terminal, then its checks
    table = pd.read_csv(out / "calibration.csv")
    assert set(table["deployment"]) == {"rho-050", "rho-080"}
    latency = table[table["check"].str.endswith("latency")]
    assert len(latency) == 8  # p50, p90, p95, p99 at two utilisations
    assert all(math.isfinite(v) for v in latency["error"])
    assert all(v > 0 for v in latency["expected"])
    # Traced (the default): judged against the trace-driven reference, with the others beside it.
    assert set(latency["reference"]) == {"trace-driven"}, table[["deployment", "reference"]].drop_duplicates()
    assert (latency["expected"] == latency["trace_ms"]).all()
    assert all(math.isfinite(v) for v in latency["conditioned_error"])
    assert all(0 < lo <= hi for lo, hi in zip(latency["band_lo_ms"], latency["band_hi_ms"], strict=True))
    assert all(math.isfinite(v) for v in latency["exact_error"])
    # The measured service time comes from Triton's own statistics, not the configured 5 ms.
    assert all(4.5 < v < 20 for v in table["service_ms"])
    lag = table[table["check"].str.startswith("lag p99")]
    assert all(0 <= v < 1000 for v in lag["measured"])
    md = (out / "calibration.md").read_text()
    assert md.splitlines()[2].startswith(("**PASS**", "**FAIL**"))
    assert (out / "report.md").exists()


def test_calibrate_untraced_is_judged_on_the_run_arrivals(tmp_path):
    out = tmp_path / "cal"
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "calibrate", "--quick", "--trace-rate", "0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = pd.read_csv(out / "calibration.csv")
    latency = table[table["check"].str.endswith("latency")]
    assert set(latency["reference"]) == {"M/D/1 on the run's arrivals"}
    assert latency["trace_ms"].isna().all()
    assert not (out / "rho-050" / "spans.parquet").exists()
