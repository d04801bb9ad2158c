"""Scale target of `perseus sweep`'s analysis: 1,000 points in under 10 s and under 2 GB.

    .venv/bin/python benchmarks/sweep_analysis.py [--points 1000] [--tenants 4] [--keep DIR]

Synthesizes a sweep folder's committed results: ``points/<point>.json`` for every point of a seeded
Latin hypercube over five factors, in the format ``perseus.sweep.run.measure`` writes (every summary
column per tenant). Outcomes follow a toy queueing model (latency grows with load and queue delay,
falls with instances, lognormal noise; an overloaded point fails some requests and gets an infinite
objective), so frontiers and effects are not degenerate. Then times, separately:

1. load: reading the committed point files (``sweep.run.load_points``);
2. analyse: ``sweep.analysis.analyse`` (table, Pareto frontiers, main effects, rank agreement);
3. write: ``sweep.report.write`` (sweep.csv, pareto.csv, main_effects.csv, both PNGs, sweep.md).

Peak memory is the process's maximum resident set (ru_maxrss), imports and synthesis included: an
upper bound on what the analysis needs. Writes benchmarks/results/sweep_analysis.json. A benchmark,
not a test: times depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from perseus import results
from perseus.sweep import analysis as an
from perseus.sweep import report
from perseus.sweep import run as sweep
from perseus.sweep.design import Point, lhs, point_name

HERE = Path(__file__).resolve().parent
SEED = 1
PRICE = 0.526  # g4dn.xlarge on-demand, us-east-1 (bundled catalog)
DURATION_S = 60.0
TARGETS = {"seconds": 10.0, "peak_rss_mb": 2048.0}
LEVELS = {"light": 0.5, "medium": 1.0, "high": 2.0, "peak": 3.0}
FACTORS = {
    "tenants.*.server.instances": [1, 2, 3, 4],
    "tenants.*.server.dynamic_batching": [False, True],
    "tenants.*.server.max_queue_delay_us": [0, 100, 500, 1000, 2000, 5000, 10000, 20000],
    "tenants.*.server.max_batch_size": [4, 8, 16, 32],
    "load.level": list(LEVELS),
}
TENANT_NAMES = ("vision", "text", "series", "audio")


@dataclass(frozen=True)
class Price:
    name: str = "g4dn.xlarge"
    usd_per_hour: float = PRICE


def tenant_row(name: str, point: str, rate: float, util: float, settings: dict, rng: np.random.Generator) -> dict:
    """One tenant's summary row at one point (toy model: M/M/c-like growth of the tail with utilisation)."""
    delay_ms = settings["tenants.*.server.max_queue_delay_us"] / 1000 if settings[
        "tenants.*.server.dynamic_batching"] else 0.0  # fmt: skip
    base = {"vision": 8.0, "text": 7.0, "series": 9.0, "audio": 20.0}.get(name, 10.0)
    p50 = base * (1 + util / max(1e-9, 1 - util)) + delay_ms / 2
    noise = float(rng.lognormal(0.0, 0.15))
    pcts = {q: p50 * (1 + k) * noise for q, k in ((50, 0.0), (90, 0.8), (95, 1.2), (99, 2.4))}
    requests = int(rate * DURATION_S)
    errors = int(requests * max(0.0, util - 0.95) * 5) if util > 0.95 else 0
    objective = math.inf if errors else pcts[99]
    sla = 100.0
    return {
        "deployment": point, "tenant": name, "model": name, "requests": requests, "errors": errors,
        "duration_s": DURATION_S, "throughput_rps": (requests - errors) / DURATION_S, "target_rps": rate,
        **{f"p{q}_ms": v for q, v in pcts.items()}, "sla_ms": sla, "sla_percentile": 99.0,
        "sla_latency_ms": objective, "sla_attainment": 1.0 - errors / max(1, requests),
        "sla_met": objective <= sla, "valid": objective <= sla and requests >= 100,
        "verdict": "VALID" if objective <= sla else "INVALID: SLA missed", "cost_per_million_usd": math.nan,
        "objective_ms": objective,
    }  # fmt: skip


def synthesize(folder: Path, n: int, tenants: int) -> list[Point]:
    rng = np.random.default_rng(SEED)
    names = TENANT_NAMES[:tenants] if tenants <= len(TENANT_NAMES) else [f"t{i}" for i in range(tenants)]
    rows = lhs(FACTORS, n, SEED)
    points = [Point(i, point_name(i, row), row) for i, row in enumerate(rows, start=1)]
    (folder / sweep.POINTS).mkdir(parents=True, exist_ok=True)
    for point in points:
        s = point.settings
        scale = LEVELS[s["load.level"]]
        capacity = 40.0 * s["tenants.*.server.instances"] * (1.6 if s["tenants.*.server.dynamic_batching"] else 1.0)
        measured = {}
        for name in names:
            rate = 20.0 * scale
            measured[name] = tenant_row(name, point.name, rate, min(0.99, rate / capacity), s, rng)
        completed = sum(r["requests"] - r["errors"] for r in measured.values())
        per_m = PRICE * DURATION_S / 3600 / completed * 1e6
        for r in measured.values():
            r["cost_per_million_usd"] = per_m
        record = {
            "point": point.name, "index": point.index, "settings": s, "scale": scale, "status": "completed",
            "reason": None, "servers": {}, "objective_percentile": 99.0, "tenants": measured,
            "deployment": {"deployment": point.name, "status": "completed", "tenants": len(names), "servers": 1,
                           "duration_s": DURATION_S, "completed": completed, "cost_usd": PRICE * DURATION_S / 3600,
                           "cost_per_million_usd": per_m, "slas_met": all(r["sla_met"] for r in measured.values()),
                           "valid": all(r["valid"] for r in measured.values())},
        }  # fmt: skip
        results.write_json_atomic(sweep.point_file(folder, point), record)
    return points


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument("--keep", type=Path, help="write the sweep folder here instead of a temporary one")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "sweep_analysis.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="perseus-sweep-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        points = synthesize(folder, args.points, args.tenants)
        synth_s = time.perf_counter() - t0
        tenants = list(TENANT_NAMES[: args.tenants])

        t0 = time.perf_counter()
        records = sweep.load_points(folder, points)
        t1 = time.perf_counter()
        result = an.analyse(records, list(FACTORS), tenants, 99.0)
        t2 = time.perf_counter()
        report.write(folder, result, scenario="synthetic", sampling="lhs", total=len(points), price=Price())
        t3 = time.perf_counter()

    total = t3 - t0
    out = {
        "benchmark": "sweep_analysis",
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": {"machine": platform.machine(), "python": sys.version.split()[0], "cpus": _cpus()},
        "points": args.points,
        "tenants": args.tenants,
        "factors": {k: len(v) for k, v in FACTORS.items()},
        "synthesize_s": round(synth_s, 3),
        "load_s": round(t1 - t0, 3),
        "analyse_s": round(t2 - t1, 3),
        "write_s": round(t3 - t2, 3),
        "total_s": round(total, 3),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "frontier_points": {f: int((result.pareto["frontier"] == f).sum()) for f in (an.COST_FRONTIER,
                                                                                      an.THROUGHPUT_FRONTIER)},
        "targets": TARGETS,
    }  # fmt: skip
    out["meets_targets"] = out["total_s"] < TARGETS["seconds"] and out["peak_rss_mb"] < TARGETS["peak_rss_mb"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
