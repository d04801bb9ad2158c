"""The calibration model's stub: busy-waiting the whole service time against sleeping most of it, A/B.

    .venv/bin/python -m benchmarks.calibration_stub [--pairs 3] [--duration 60] [--spin 10 --spin 1]
    .venv/bin/python -m benchmarks.calibration_stub --table RESULT.json [RESULT.json ...]   # docs/benchmarks.md

Runs `perseus calibrate` (traced, its default) ``--pairs`` times at each ``--spin-ms`` value,
interleaved (ABAB...), and reads from each run folder, per utilisation:

- the scheduled-to-sent lag (p50, p99) and every latency error, from calibration.csv;
- the model's own time per request (COMPUTE_START to COMPUTE_END in spans.parquet, measured
  window): how deterministic the service stays when the stub sleeps and wakes;
- the CPU the server and the load generator used (host telemetry's ``cpu_percent``, per tick).

``--spin`` equal to ``--service-ms`` (10 by default) is the model that busy-waits its whole service
time; a smaller value sleeps all but that last part. The question: does the load generator keep
its lag under 1 ms when the model no longer takes a core, and does the service time stay fixed?
Writes benchmarks/results/calibration_stub-<date>.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.ab_runs import ROOT, calibrate_run, check, write_runs


def calibrate(spin_ms: float, out: Path, args) -> dict:
    flags = ["--spin-ms", f"{spin_ms:g}", "--duration", f"{args.duration:g}", "--service-ms", f"{args.service_ms:g}"]
    flags += [a for r in args.rho for a in ("--rho", f"{r:g}")]
    return {"spin_ms": spin_ms, **calibrate_run(flags, out)}


def _line(run: dict) -> str:
    parts = []
    for point, figures in run["points"].items():
        compute = figures.get("compute_ms", {})
        parts.append(
            f"{point}: lag p99 {check(run, point, 'lag p99 (scheduled to sent)'):.2f} ms, "
            f"compute p50/p99.9 {compute.get('p50', float('nan')):.2f}/{compute.get('p99.9', float('nan')):.2f} ms, "
            f"server cpu {figures.get('cpu_percent_server', float('nan')):.0f}%"
        )
    return "; ".join(parts)


def table(paths: list[Path]) -> str:
    """docs/benchmarks.md's table: one row per run, from committed results."""
    lines = [
        "| file | pair | spin (ms) | lag p50 / p99 at 0.5 (ms) | lag p99 at 0.8 (ms) | model's time p50 / p99.9 "
        "at 0.5 (ms) | server CPU at 0.5 / 0.8 | p50 error at 0.5 | checks passed |",
        "|---|---:|---:|---|---:|---|---|---:|---:|",
    ]
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            points = sorted(run["points"])  # the lowest and the highest utilisation
            half, high = points[0], points[-1]
            compute = run["points"][half].get("compute_ms", {})
            cpu = [run["points"][p].get("cpu_percent_server", float("nan")) for p in (half, high)]
            passed = sum(r["passed"] == "True" for r in run["rows"])
            lines.append(
                f"| {path.name} | {run['pair']} | {run['spin_ms']:g} | "
                f"{check(run, half, 'lag p50 (scheduled to sent)'):.2f} / "
                f"{check(run, half, 'lag p99 (scheduled to sent)'):.2f} | "
                f"{check(run, high, 'lag p99 (scheduled to sent)'):.2f} | "
                f"{compute.get('p50', float('nan')):.2f} / {compute.get('p99.9', float('nan')):.2f} | "
                f"{cpu[0]:.0f}% / {cpu[1]:.0f}% | {check(run, half, 'p50 latency', 'error') * 100:+.1f}% | "
                f"{passed} of {len(run['rows'])} |"
            )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--service-ms", type=float, default=10.0)
    ap.add_argument("--spin", type=float, action="append", help="--spin-ms values, one arm each (default 10, 1)")
    ap.add_argument("--rho", type=float, action="append")
    default_out = ROOT / "benchmarks" / "results" / f"calibration_stub-{datetime.now(UTC):%Y-%m-%d}.json"
    ap.add_argument("--out", type=Path, default=default_out)
    ap.add_argument(
        "--table", type=Path, nargs="+", help="print docs/benchmarks.md's table of these results, run nothing"
    )
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return 0
    args.rho = args.rho or [0.5, 0.8]
    args.spin = args.spin or [args.service_ms, 1.0]
    runs = []
    with tempfile.TemporaryDirectory(prefix="calibration-stub-") as tmp:
        for pair in range(args.pairs):
            for spin in args.spin:
                run = calibrate(spin, Path(tmp) / f"spin{spin:g}-{pair}", args)
                run["pair"] = pair
                runs.append(run)
                print(f"pair {pair} spin {spin:g} ms rc {run['rc']}: {_line(run)}", flush=True)
    write_runs(args.out, args, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
