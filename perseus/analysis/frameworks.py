"""Serving frameworks side by side: the same tenants, schedules and models on each kind (pure, over the rows).

With ``[run] servers``, each deployment ran once per framework (``<deployment>@<kind>``, its kind and
the deployment it is recorded in the manifest as ``server`` and ``layout``). Per (layout, tenant),
one row per framework: throughput, p50, p99, the SLA verdict, the server's CPU (its process tree, %
of one core, over the measured window) and $/1M good inferences, and p50 and p99 as ratios to
Triton's (NaN when Triton did not run or has no figure).
"""

from __future__ import annotations

import math

import pandas as pd

from perseus.analysis.strategies import mean_cpu

REFERENCE = "triton"
COLUMNS = [
    "layout",
    "tenant",
    "server",
    "deployment",
    "throughput_rps",
    "p50_ms",
    "p99_ms",
    "sla_met",
    "server_cpu_percent",
    "cost_per_million_good_usd",
    "p50_vs_triton",
    "p99_vs_triton",
]


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference and math.isfinite(reference) and math.isfinite(value) else math.nan


def compare_frameworks(
    rows: pd.DataFrame, telemetry: pd.DataFrame | None, deployments: dict[str, dict]
) -> pd.DataFrame:
    """One row per (layout, tenant, server) for deployments of a framework comparison; empty otherwise.

    ``deployments``: name -> its manifest record (``server``, ``layout``), in run order; repeated
    trials (trial > 1) are left to the trials table."""
    out = []
    for name, meta in deployments.items():
        if not meta.get("server") or int(meta.get("trial", 1)) != 1:
            continue
        for _, r in rows[rows["deployment"] == name].iterrows():
            out.append(
                {
                    "layout": meta.get("layout") or name,
                    "tenant": r["tenant"],
                    "server": meta["server"],
                    "deployment": name,
                    "throughput_rps": r["throughput_rps"],
                    "p50_ms": r["p50_ms"],
                    "p99_ms": r["p99_ms"],
                    "sla_met": bool(r["sla_met"]),
                    "server_cpu_percent": mean_cpu(telemetry, name, "server"),
                    "cost_per_million_good_usd": r["cost_per_million_good_usd"],
                }
            )
    table = pd.DataFrame(out, columns=COLUMNS)
    if table.empty:
        return table
    reference = table[table["server"] == REFERENCE].set_index(["layout", "tenant"])
    for column in ("p50", "p99"):
        ref = [
            reference[f"{column}_ms"].get((r.layout, r.tenant), math.nan) if len(reference) else math.nan
            for r in table.itertuples()
        ]
        table[f"{column}_vs_triton"] = [_ratio(v, b) for v, b in zip(table[f"{column}_ms"], ref, strict=True)]
    return table
