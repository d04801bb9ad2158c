"""The dispatcher's head start (perseus.load.timing.HeadStart): `perseus calibrate` before and after, A/B.

    git worktree add /tmp/before <rev>      # the engine before the head start
    .venv/bin/python -m benchmarks.head_start --before /tmp/before [--pairs 3] [--duration 60]
    .venv/bin/python -m benchmarks.head_start --table RESULT.json            # docs/benchmarks.md

Runs `perseus calibrate` with its defaults (traced, rho 0.5 and 0.8) from two source trees, this one
(or ``--after``) and ``--before``, in ABBA order over ``--pairs`` pairs, with this venv's Python and the tree first on
PYTHONPATH. Reads from each run folder, per utilisation, the scheduled-to-sent lag (p50, p99), every
percentile's error against the verdict's reference (trace-driven) and against M/D/1 on the run's
arrivals, the checks passed, and the CPU that the load generator and the server used (host telemetry).
Writes benchmarks/results/head_start-<date>.json. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.ab_runs import ROOT, calibrate_run, check, write_runs

QS = (50, 90, 95, 99)


def calibrate(tree: Path, arm: str, out: Path, args) -> dict:
    return {"arm": arm, "tree": str(tree), **calibrate_run(["--duration", f"{args.duration:g}"], out, tree)}


def _errors(run: dict, point: str, column: str) -> str:
    return " / ".join(f"{check(run, point, f'p{q} latency', column) * 100:+.1f}" for q in QS)


def table(paths: list[Path]) -> str:
    """docs/benchmarks.md's table: one row per (run, utilisation), from committed results."""
    lines = [
        "| file | pair | arm | rho | lag p50 / p99 (ms) | error vs trace-driven, p50 / p90 / p95 / p99 (%) "
        "| error vs M/D/1 on its arrivals (%) | load generator CPU | checks passed (run) |",
        "|---|---:|---|---:|---|---|---|---:|---:|",
    ]
    for path in paths:
        for run in json.loads(path.read_text())["runs"]:
            passed = sum(r["passed"] == "True" for r in run["rows"])
            for point, figures in run["points"].items():
                lines.append(
                    f"| {path.name} | {run['pair']} | {run['arm']} | {point.removeprefix('rho-')} | "
                    f"{check(run, point, 'lag p50 (scheduled to sent)'):.3f} / "
                    f"{check(run, point, 'lag p99 (scheduled to sent)'):.2f} | "
                    f"{_errors(run, point, 'trace_error')} | {_errors(run, point, 'conditioned_error')} | "
                    f"{figures.get('cpu_percent_loadgen', float('nan')):.1f}% | {passed} of {len(run['rows'])} |"
                )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", type=Path, help="a checkout of perseus before the head start")
    ap.add_argument("--after", type=Path, default=ROOT, help="the checkout with it (default: this one)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60.0)
    default_out = ROOT / "benchmarks" / "results" / f"head_start-{datetime.now(UTC):%Y-%m-%d}.json"
    ap.add_argument("--out", type=Path, default=default_out)
    ap.add_argument(
        "--table", type=Path, nargs="+", help="print docs/benchmarks.md's table of these results, run nothing"
    )
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return 0
    if args.before is None:
        ap.error("--before is needed to run (or --table to print)")
    arms = [("head start", args.after.resolve()), ("before", args.before.resolve())]
    runs = []
    with tempfile.TemporaryDirectory(prefix="head-start-") as tmp:
        for pair in range(args.pairs):
            for arm, tree in arms if pair % 2 == 0 else arms[::-1]:  # ABBA: drift spreads over both arms
                run = calibrate(tree, arm, Path(tmp) / f"{arm.replace(' ', '-')}-{pair}", args)
                run["pair"] = pair
                runs.append(run)
                lags = ", ".join(
                    f"{p}: lag p50 {check(run, p, 'lag p50 (scheduled to sent)'):.3f} ms, "
                    f"p50 error {check(run, p, 'p50 latency', 'error') * 100:+.1f}%"
                    for p in run["points"]
                )
                print(f"pair {pair} {arm} rc {run['rc']}: {lags}", flush=True)
    write_runs(args.out, args, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
