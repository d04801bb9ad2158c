"""Pipelines (Triton ensembles) as tenants: each step's server-side time beside the end-to-end latency.

The client sees one request per pipeline; Triton counts each step's model separately, so the steps'
queue and compute times come from the composing models' own counters (pure, over telemetry).
"""

from __future__ import annotations

import pandas as pd

from perseus.analysis import cost

COLUMNS = ["deployment", "tenant", "step", "model", "inferences_per_s", "avg_batch", "queue_ms", "compute_ms"]


def pipeline_steps(telemetry: pd.DataFrame | None, pipelines: dict[str, dict[str, list[str]]]) -> pd.DataFrame:
    """``pipelines``: deployment -> {tenant: [step models in order]}. One row per (deployment, tenant, step)."""
    if telemetry is None or telemetry.empty or not any(pipelines.values()):
        return pd.DataFrame(columns=COLUMNS)
    rates = cost.server_rates(cost.triton_counters(telemetry)).set_index(["deployment", "tenant"])
    rows = []
    for deployment, tenants in pipelines.items():
        for tenant, models in tenants.items():
            for i, model in enumerate(models, start=1):
                key = (deployment, model)  # composing models are labelled by their own names
                r = rates.loc[key] if key in rates.index else None
                rows.append(
                    {
                        "deployment": deployment,
                        "tenant": tenant,
                        "step": i,
                        "model": model,
                        **{c: (float(r[c]) if r is not None else float("nan")) for c in COLUMNS[4:]},
                    }
                )
    return pd.DataFrame(rows, columns=COLUMNS)
