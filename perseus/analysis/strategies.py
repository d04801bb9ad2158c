"""Embedded vs external serving: does the RPC hop pay for itself? (pure, over the Summary's rows)

For each tenant, its solo deployment through Triton ("external") beside its embedded deployment
(the same ONNX model run in-process by the load generator, same schedule). Embedded runs share the
load generator's CPU, so both sides show the CPU the load generator and the server used.
"""

from __future__ import annotations

import pandas as pd

from perseus.analysis.observer import mean_cpu
from perseus.analysis.roles import first_of_kind
from perseus.kinds import DeploymentKind

COLUMNS = [
    "tenant",
    "strategy",
    "deployment",
    "throughput_rps",
    "p50_ms",
    "p99_ms",
    "sla_met",
    "cost_per_million_usd",
    "loadgen_cpu_percent",
    "server_cpu_percent",
]


def compare_strategies(
    rows: pd.DataFrame, telemetry: pd.DataFrame | None, deployments: dict[str, dict]
) -> pd.DataFrame:
    """One row per (tenant, strategy) for tenants that ran embedded; empty otherwise.

    ``deployments``: name -> its manifest record (``kind``, ``tenants``, ``base``), in run order."""
    out = []
    for tenant in rows["tenant"].unique():
        embedded = first_of_kind(deployments, DeploymentKind.EMBEDDED, tenant)
        if embedded is None:
            continue
        external = first_of_kind(deployments, DeploymentKind.SOLO, tenant) or first_of_kind(
            deployments, DeploymentKind.SHARED, tenant
        )
        for strategy, name in (("external", external), ("embedded", embedded)):
            match = rows[(rows["deployment"] == name) & (rows["tenant"] == tenant)]
            if match.empty:
                continue
            r = match.iloc[0]
            out.append(
                {
                    "tenant": tenant,
                    "strategy": strategy,
                    "deployment": name,
                    "throughput_rps": r["throughput_rps"],
                    "p50_ms": r["p50_ms"],
                    "p99_ms": r["p99_ms"],
                    "sla_met": bool(r["sla_met"]),
                    "cost_per_million_usd": r["cost_per_million_usd"],
                    "loadgen_cpu_percent": mean_cpu(telemetry, name, "loadgen"),
                    "server_cpu_percent": mean_cpu(telemetry, name, "server") if strategy == "external" else 0.0,
                }
            )
    return pd.DataFrame(out, columns=COLUMNS)
