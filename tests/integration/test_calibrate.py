"""`perseus calibrate --quick` on a real tritonserver: the verdict table exists and its errors are finite.

Tolerances are for the benchmark (docs/benchmarks.md), not for CI: a few seconds per utilisation
checks the machinery, not the accuracy.
"""

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.integration


def _server_writing(log: Path) -> int | None:
    """The pid of the process whose stdout is ``log`` (the tritonserver of that deployment), if any."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "fd" / "1") == str(log):
                    return int(entry.name)
            except OSError:
                continue
    return None


def _crash_once(log: Path, deadline_s: float, crashed: list[bytes]) -> None:
    """Once ``log``'s server is serving, kill it with SIGSEGV: the crash of Triton 2.51's tracer, on cue.
    ``crashed`` gets the server's environment."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        text = log.read_text(errors="replace") if log.exists() else ""
        pid = _server_writing(log) if "Started HTTPService" in text else None
        if pid is not None:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            time.sleep(1.5)  # into the measured window
            os.kill(pid, signal.SIGSEGV)
            crashed.append(environ)
            return
        time.sleep(0.1)


def test_calibrate_quick_writes_a_finite_verdict_table_and_reruns_a_crashed_point(tmp_path):
    out = tmp_path / "cal"
    crashed: list[bytes] = []
    killer = threading.Thread(target=_crash_once, args=(out / "rho-050" / "server.log", 240, crashed), daemon=True)
    killer.start()
    proc = subprocess.run(
        [sys.executable, "-m", "perseus.cli", "calibrate", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    killer.join(timeout=5)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The traced server that crashed: named as a crash, with the known tracer fault; its point run again.
    assert crashed, "the rho-050 server was never seen serving"
    assert b"GLIBC_TUNABLES=glibc.malloc.tcache_count=65535" in crashed[0].split(b"\0")  # tracing.SERVER_ENV
    assert "rho-050: failed: tritonserver crashed" in proc.stderr and "SIGSEGV" in proc.stderr, proc.stderr
    assert "running it again" in proc.stderr
    record = json.loads((out / "manifest.json").read_text())["deployments"]["rho-050"]
    assert record["status"] == "completed"
    assert len(record["retried"]) == 1 and "triton-inference-server/server#8144" in record["retried"][0]
    assert (out / "rho-050.failed-1" / "server.log").exists()
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
    # The trace reference adds only the client's share of the probe's overhead; the server's is traced.
    assert (table["client_ms"] > 0).all()
    # Counted from when each request was sent, latency can only be lower: the lag is never negative.
    assert (latency["error_without_lag"] <= latency["error"] + 1e-12).all()
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
    # The model holds each request for its whole service time (5 ms with --quick), sleeping then spinning
    # to the deadline: never shorter, by Triton's own trace of each execution.
    spans = pd.read_parquet(out / "rho-080" / "spans.parquet")
    compute_ms = (spans["compute_end_s"] - spans["compute_start_s"]).dropna() * 1e3
    assert len(compute_ms) > 20 and compute_ms.min() >= 5.0 - 1e-3, compute_ms.describe()
    assert compute_ms.median() < 7.0, compute_ms.describe()


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
    assert latency["trace_ms"].isna().all() and table["client_ms"].isna().all()
    assert not (out / "rho-050" / "spans.parquet").exists()
    # The model sleeps all but the last --spin-ms of each service time: the server, busy 80% of the time at
    # rho 0.8, used far less than 80% of a core (a model spinning its whole service time: about 80%).
    config = (out / "calibration_repository" / "calibration" / "config.pbtxt").read_text()
    assert 'key: "spin_ms" value { string_value: "0.25" }' in config
    telemetry = pd.read_parquet(out / "rho-080" / "telemetry.parquet")
    server_cpu = telemetry[(telemetry["metric"] == "cpu_percent") & telemetry["labels"].str.contains('"server"')]
    assert len(server_cpu) >= 2 and server_cpu["value"].mean() < 40, server_cpu["value"].describe()
