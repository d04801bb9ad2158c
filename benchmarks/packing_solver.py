"""Targets of `perseus plan`'s solver (perseus/packing/solve.py), on seeded synthetic capacity tables:

    .venv/bin/python benchmarks/packing_solver.py [--tables 20] [--json PATH]

1. correctness: `solve` equals the exhaustive optimum (`brute_force`, every set partition) on every table
   for n = 1..7: full tables, and sparse ones (groups missing, some tenants unable to run alone);
2. the heuristic at n = 12 (and 14) within 5% of the exact DP on `--tables` seeded tables, with whole-dollar
   prices and with three catalog prices: max and median gap, and both solvers' times;
3. planning 12 tenants from a table in under 1 s: `solve` with its default exact_max, table included;
4. how the exact DP grows with n (to choose EXACT_MAX), and the heuristic's time where only it can go.

Odd seeds have two instance types (a big one 2.5x the price, better per dollar for some tenants, worse for
others). A benchmark, not a test: times depend on the machine and on whatever else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from perseus.packing.solve import (
    EXACT_MAX,
    Option,
    brute_force,
    solve,
    solve_exact,
    solve_heuristic,
    synthetic_options,
)

INSTANCES = {"small": 1.0, "big": 2.5}
# Three real prices (bundled catalog, AWS us-east-1 on-demand): sums of these rarely tie, unlike whole dollars.
CATALOG = {"g4dn.xlarge": 0.526, "g6.xlarge": 0.8048, "g5.xlarge": 1.006}
CATALOG_SEED = 100  # its tables' seeds start here, so they are not the whole-dollar tables again
CORRECTNESS_SEEDS = 30  # per n and per kind of table: 7 x 30 x 2 = 420 tables
SPARSE_KEEP = 0.6  # share of a table's options kept in the sparse variant
TARGETS = {"gap": 0.05, "solve_12_s": 1.0}
GROWTH = (12, 13, 14, 15, 16)  # exact DP, full tables (2^n - 1 options)
HEURISTIC_ONLY = ((20, 4), (30, 4))  # (tenants, largest group in the table): 2^n groups cannot be measured


def table(
    n: int, seed: int, max_size: int | None = None, instances: dict[str, float] | None = None
) -> tuple[list[str], list[Option]]:
    return synthetic_options(n, seed, instances or (INSTANCES if seed % 2 else None), max_size)


def sparse(options: list[Option], seed: int) -> list[Option]:
    rng = random.Random(seed)
    return [o for o in options if rng.random() < SPARSE_KEEP]


def timed(f: Callable, *args):
    start = time.perf_counter()
    out = f(*args)
    return out, time.perf_counter() - start


def correctness() -> dict:
    tables = equal = infeasible = 0
    for n in range(1, 8):
        for seed in range(CORRECTNESS_SEEDS):
            names, options = table(n, seed)
            for variant in (options, sparse(options, seed)):
                reference = brute_force(names, variant)
                tables += 1
                equal += solve(names, variant) == reference
                infeasible += reference is None
    return {"tables": tables, "equal": equal, "no_partition": infeasible}


def heuristic_vs_exact(n: int, tables: int, instances: dict[str, float] | None = None, first: int = 0) -> dict:
    gaps, exact_s, heuristic_s, solve_s = [], [], [], []
    for seed in range(first, first + tables):
        names, options = table(n, seed, instances=instances)
        exact, t_exact = timed(solve_exact, names, options)
        heuristic, t_heuristic = timed(solve_heuristic, names, options)
        _, t_solve = timed(solve, names, options)
        gaps.append(heuristic.usd_per_hour / exact.usd_per_hour - 1)
        exact_s.append(t_exact)
        heuristic_s.append(t_heuristic)
        solve_s.append(t_solve)
    return {
        "n": n,
        "prices": "catalog" if instances else "whole dollars",
        "tables": tables,
        "gap_max": max(gaps),
        "gap_median": statistics.median(gaps),
        "heuristic_optimal": sum(g <= 1e-12 for g in gaps),
        "exact_s_median": statistics.median(exact_s),
        "exact_s_max": max(exact_s),
        "heuristic_s_median": statistics.median(heuristic_s),
        "heuristic_s_max": max(heuristic_s),
        "solve_s_median": statistics.median(solve_s),
        "solve_s_max": max(solve_s),
    }


def growth() -> list[dict]:
    rows = []
    for n in GROWTH:
        names, options = table(n, 0)
        packing, seconds = timed(solve_exact, names, options)
        rows.append({"n": n, "options": len(options), "exact_s": seconds, "usd_per_hour": packing.usd_per_hour})
    return rows


def heuristic_only() -> list[dict]:
    rows = []
    for n, max_size in HEURISTIC_ONLY:
        names, options = table(n, 0, max_size)
        packing, seconds = timed(solve, names, options)
        rows.append(
            {
                "n": n,
                "max_group": max_size,
                "options": len(options),
                "heuristic_s": seconds,
                "usd_per_hour": packing.usd_per_hour,
                "servers": packing.servers,
            }
        )
    return rows


def render(result: dict) -> str:
    c = result["correctness"]
    lines = [
        f"correctness: solve == brute_force on {c['equal']}/{c['tables']} tables (n = 1..7, "
        f"{c['no_partition']} with no partition)",
        "",
        "| n | prices | tables | heuristic gap max | median | heuristic optimal | exact DP s (median / max) "
        "| heuristic s (median / max) | solve s (median / max) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for h in result["heuristic_vs_exact"]:
        lines.append(
            f"| {h['n']} | {h['prices']} | {h['tables']} | {h['gap_max']:.1%} | {h['gap_median']:.1%} | "
            f"{h['heuristic_optimal']}/{h['tables']} | {h['exact_s_median']:.3f} / {h['exact_s_max']:.3f} | "
            f"{h['heuristic_s_median']:.3f} / {h['heuristic_s_max']:.3f} | "
            f"{h['solve_s_median']:.3f} / {h['solve_s_max']:.3f} |"
        )
    lines += ["", "| n | options | exact DP s |", "|---:|---:|---:|"]
    lines += [f"| {g['n']} | {g['options']:,} | {g['exact_s']:.3f} |" for g in result["growth"]]
    lines += ["", "| n | largest group | options | heuristic s | $/h | servers |", "|---:|---:|---:|---:|---:|---:|"]
    lines += [
        f"| {h['n']} | {h['max_group']} | {h['options']:,} | {h['heuristic_s']:.2f} | {h['usd_per_hour']:.2f} | "
        f"{h['servers']} |"
        for h in result["heuristic_only"]
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    solve(*table(EXACT_MAX, 0))  # warm-up: imports and the DP's cached small structures
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus": os.cpu_count(),
        },
        "exact_max": EXACT_MAX,
        "targets": TARGETS,
        "correctness": correctness(),
        "heuristic_vs_exact": [
            heuristic_vs_exact(12, args.tables),
            heuristic_vs_exact(12, args.tables, CATALOG, CATALOG_SEED),
            heuristic_vs_exact(14, args.tables // 2),
        ],
        "growth": growth(),
        "heuristic_only": heuristic_only(),
    }
    twelve = [h for h in result["heuristic_vs_exact"] if h["n"] == 12]
    result["verdict"] = {
        "solver_equals_exhaustive": result["correctness"]["equal"] == result["correctness"]["tables"],
        "heuristic_within_gap_at_12": all(h["gap_max"] <= TARGETS["gap"] for h in twelve),
        "solve_12_under_1s": all(h["solve_s_max"] < TARGETS["solve_12_s"] for h in twelve),
    }
    print(render(result))
    print(json.dumps(result["verdict"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
