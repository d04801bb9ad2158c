"""MLPerf LoadGen's Server scenario against a Triton model: run in LoadGen's own venv, by vs_loadgen.py.

    <loadgen venv>/bin/python benchmarks/loadgen_sut.py --url http://127.0.0.1:PORT --model calibration \\
        --rate 50 --duration 30 --seed 1 --out DIR

Standard library and ``mlperf_loadgen`` only (the `mlcommons-loadgen` wheel; it wants numpy < 2 and
pyarrow < 18, so it lives apart from perseus's venv). The SUT is a 64-thread pool: each query is one
HTTP/JSON inference on its own keep-alive connection per thread, completed to LoadGen when the answer
is in. LoadGen draws the Poisson schedule (``schedule_rng_seed``) and measures each query's latency from
its scheduled time. Writes DIR/issued.csv (when LoadGen issued each query, seconds of CLOCK_MONOTONIC:
the arrivals perseus replays) and DIR/loadgen.json (LoadGen's percentiles from its summary log).
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import mlperf_loadgen as lg

THREADS = 64
BODY = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}).encode()
# "50.00 percentile latency (ns)   : 12345" in mlperf_log_summary.txt
PERCENTILE_LINE = re.compile(r"^(\d+\.\d+) percentile latency \(ns\)\s*:\s*(\d+)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = urlsplit(args.url)
    path = f"/v2/models/{args.model}/infer"
    local = threading.local()
    issued: list[int] = []
    pool = ThreadPoolExecutor(THREADS)

    def infer(sample_id: int) -> None:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        local.conn.request("POST", path, body=BODY, headers={"Content-Type": "application/json"})
        response = local.conn.getresponse()
        response.read()
        lg.QuerySamplesComplete([lg.QuerySampleResponse(sample_id, 0, 0)])

    def issue(samples) -> None:
        now = time.monotonic_ns()
        for sample in samples:
            issued.append(now)
            pool.submit(infer, sample.id)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda samples: None, lambda samples: None)
    settings = lg.TestSettings()
    settings.scenario = lg.TestScenario.Server
    settings.mode = lg.TestMode.PerformanceOnly
    settings.server_target_qps = args.rate
    settings.min_duration_ms = int(args.duration * 1000)
    settings.max_duration_ms = int(args.duration * 1000)
    settings.min_query_count = 1
    # A loose bound: this run measures latency, it does not seek the highest passing rate.
    settings.server_target_latency_ns = 10_000_000_000
    settings.schedule_rng_seed = args.seed
    log = lg.LogSettings()
    log.log_output.outdir = str(args.out)
    log.log_output.copy_summary_to_stdout = False
    lg.StartTestWithLogSettings(sut, qsl, settings, log)
    pool.shutdown(wait=True)
    lg.DestroyQSL(qsl)
    lg.DestroySUT(sut)
    (args.out / "issued.csv").write_text("t_s\n" + "".join(f"{t / 1e9:.9f}\n" for t in sorted(issued)))
    percentiles = {}
    for line in (args.out / "mlperf_log_summary.txt").read_text().splitlines():
        match = PERCENTILE_LINE.match(line.strip())
        if match:
            percentiles[match.group(1)] = int(match.group(2)) / 1e6
    (args.out / "loadgen.json").write_text(json.dumps({"queries": len(issued), "percentiles_ms": percentiles}))


if __name__ == "__main__":
    main()
