"""What Triton's trace API costs: `perseus run` with `--trace-rate 1` against the same run untraced.

    .venv/bin/python -m benchmarks.tracing_overhead [--pairs 3] [--rate 100] [--duration 15] [--model lstm_tiny]

One open-loop (Poisson) tenant on the local server, run untraced and traced in turn, ``--pairs``
times (interleaved, so the machine's drift hits both alike). The same seed gives both runs identical
arrivals. Per run: the latency p50 and p99, and the server's CPU per request (its processes' mean
CPU over the measured window, from perseus's own host telemetry, divided by the achieved rate).
Prints a Markdown table, the traced/untraced ratios of each pair and their median, and writes
benchmarks/results/tracing_overhead.json. A benchmark, not a test: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq

from perseus import results
from perseus.analysis.strategies import mean_cpu

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "tracing_overhead.json"

SCENARIO = """
name = "tracing-bench"
[server]
model_repository = "{models}"
device = "cpu"
[run]
duration_s = {duration}
warmup_s = 2
seed = 7
baselines = false
[[tenants]]
name = "load"
model = "{model}"
sla_ms = 1000
[tenants.load]
arrival = "poisson"
rate = {rate}
"""


def measure(scenario: Path, trace_rate: int, run_dir: Path) -> dict:
    cmd = [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(run_dir)]
    cmd += ["--trace-rate", str(trace_rate)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"perseus run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    req = results.read_requests(run_dir).to_pandas()
    measured = req[~req.warmup & req.ok]
    duration = float(results.read_manifest(run_dir)["deployments"]["shared"]["duration_s"])
    rate = len(measured) / duration
    server_cpu = mean_cpu(results.read_telemetry(run_dir).to_pandas(), "shared", "server")
    spans = run_dir / "shared" / results.SPANS
    return {
        "trace_rate": trace_rate,
        "requests": len(measured),
        "traced": pq.read_metadata(spans).num_rows if spans.exists() else 0,
        "p50_ms": float(measured.latency_ms.quantile(0.5)),
        "p99_ms": float(measured.latency_ms.quantile(0.99)),
        "server_cpu_percent": server_cpu,
        # % of one core x 10 ms per second = ms of CPU per second; over requests per second.
        "server_cpu_ms_per_request": server_cpu * 10.0 / rate,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--model", default="lstm_tiny")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file for the results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="perseus-bench-tracing-") as tmp:
        scenario = Path(tmp) / "scenario.toml"
        scenario.write_text(
            SCENARIO.format(models=ROOT / "model_repository", duration=args.duration, model=args.model, rate=args.rate)
        )
        for pair in range(args.pairs):
            for trace_rate in (0, 1):
                row = {"pair": pair, **measure(scenario, trace_rate, Path(tmp) / f"run-{pair}-{trace_rate}")}
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    print("| pair | trace rate | requests | traced | p50 (ms) | p99 (ms) | server CPU | server CPU ms/request |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['pair']} | {r['trace_rate']} | {r['requests']} | {r['traced']} | {r['p50_ms']:.3f} | "
            f"{r['p99_ms']:.3f} | {r['server_cpu_percent']:.1f}% | {r['server_cpu_ms_per_request']:.3f} |"
        )
    ratios = {key: [] for key in ("p50_ms", "p99_ms", "server_cpu_ms_per_request")}
    for off, on in zip(rows[::2], rows[1::2], strict=True):
        for key, values in ratios.items():
            values.append(on[key] / off[key])
    summary = {key: statistics.median(values) for key, values in ratios.items()}
    print()
    per_pair = "; ".join(f"{k} {', '.join(f'{v:.3f}' for v in vs)}" for k, vs in ratios.items())
    print(f"traced / untraced, per pair: {per_pair}")
    print("median: " + ", ".join(f"{k} x{v:.3f}" for k, v in summary.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
                "command": "python -m benchmarks.tracing_overhead " + " ".join(sys.argv[1:]),
                "model": args.model,
                "rate": args.rate,
                "duration_s": args.duration,
                "rows": rows,
                "median_ratio": summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
