"""The request rate one load process sustains vs two Locust workers (`perseus run --workers 2`).

    .venv/bin/python -m benchmarks.workers [--rates 400 800 1200 1600] [--duration 10] [--model lstm_tiny] [--out F]

For each target rate, runs `perseus run` on a one-tenant open-loop (Poisson) scenario twice, side by
side: from one process, and with `--workers 2`. An open-loop generator keeps up when it sends every
request on time, whatever the server does, so the figures are the achieved send rate and the send lag
(``sent_s - scheduled_s``): a generator out of CPU sends late, and its lag grows without bound. Also
reported: the load generator's CPU (master and workers, not the server) and the latency p99. Prints a
Markdown table and writes benchmarks/results/workers.json. A benchmark, not a test: on a 2-core machine
the server and the load generator share the cores, so read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perseus import results
from perseus.analysis.observer import mean_cpu

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "workers.json"
LAG_OK_MS = 5.0  # "keeps up": p99 send lag under this, and at least 99% of the target rate sent

SCENARIO = """
name = "workers-bench"
[server]
model_repository = "{models}"
device = "cpu"
[run]
duration_s = {duration}
warmup_s = 1
seed = 5
baselines = false
request_timeout_s = 10
[[tenants]]
name = "load"
model = "{model}"
sla_ms = 1000
[tenants.load]
arrival = "poisson"
rate = {rate}
[tenants.server]
instances = 1
dynamic_batching = true
max_queue_delay_us = 1000
"""


def measure(rate: float, workers: int, duration: float, model: str, tmp: Path) -> dict:
    scenario = tmp / f"r{rate:g}-w{workers}.toml"
    scenario.write_text(SCENARIO.format(models=ROOT / "model_repository", duration=duration, model=model, rate=rate))
    run_dir = tmp / f"run-r{rate:g}-w{workers}"
    cmd = [sys.executable, "-m", "perseus.cli", "run", str(scenario), "--out", str(run_dir)]
    if workers:
        cmd += ["--workers", str(workers)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, check=False)
    if proc.returncode not in (0, 1):  # 1: the SLA verdicts or a failure; the records are still there
        raise RuntimeError(f"perseus run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    req = results.read_requests(run_dir).to_pandas()
    measured = req[~req.warmup]
    lag_ms = (measured.sent_s - measured.scheduled_s) * 1e3
    sent_rate = ((measured.sent_s >= 0) & (measured.sent_s < duration)).sum() / duration
    telemetry = results.read_telemetry(run_dir).to_pandas()
    return {
        "target_rps": rate,
        "workers": workers,
        "status": results.read_manifest(run_dir)["status"],
        "sent_rps": float(sent_rate),
        "ok_fraction": float(measured.ok.mean()),
        "lag_p50_ms": float(lag_ms.quantile(0.5)),
        "lag_p99_ms": float(lag_ms.quantile(0.99)),
        "latency_p99_ms": float(measured.latency_ms.quantile(0.99)),
        "loadgen_cpu_percent": mean_cpu(telemetry, "shared", "loadgen"),
        "server_cpu_percent": mean_cpu(telemetry, "shared", "server"),
    }


def keeps_up(row: dict) -> bool:
    return row["sent_rps"] >= 0.99 * row["target_rps"] and row["lag_p99_ms"] < LAG_OK_MS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[400, 800, 1200, 1600])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--model", default="lstm_tiny")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file for the results")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="perseus-bench-workers-") as tmp:
        for rate in args.rates:
            for workers in (0, 2):  # side by side at each rate, so drift on the machine hits both
                row = measure(rate, workers, args.duration, args.model, Path(tmp))
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    print(
        "| target req/s | load from | sent req/s | send lag p50 / p99 (ms) | latency p99 (ms) "
        "| load-gen CPU | keeps up |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        who = "1 process" if r["workers"] == 0 else f"{r['workers']} workers"
        cpu = r["loadgen_cpu_percent"]
        print(
            f"| {r['target_rps']:g} | {who} | {r['sent_rps']:.0f} | {r['lag_p50_ms']:.2f} / {r['lag_p99_ms']:.2f} "
            f"| {r['latency_p99_ms']:.1f} | {cpu:.0f}% | {'yes' if keeps_up(r) else 'no'} |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "host": {"cpu_cores": os.cpu_count(), "platform": platform.platform()},
                "command": "python -m benchmarks.workers " + " ".join(sys.argv[1:]),
                "model": args.model,
                "duration_s": args.duration,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
