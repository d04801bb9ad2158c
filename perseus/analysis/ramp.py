"""Stress ramps: the rate rises level by level; the breaking point is the first level whose requests
miss the SLA (their SLA percentile over ``sla_ms``). Pure, from the records and the ramp's levels."""

from __future__ import annotations

import math

import pandas as pd

from perseus.analysis.shapes import ramp_levels
from perseus.analysis.stats import sla_latency

COLUMNS = ["deployment", "tenant", "level", "start_s", "end_s", "rate_rps", "requests", "sla_latency_ms", "sla_met"]


def level_table(requests: pd.DataFrame, deployment: str, tenant: dict, duration_s: float) -> pd.DataFrame:
    """Per level of one tenant's ramp: requests scheduled in it and their SLA-percentile latency."""
    load = tenant["load"]
    mine = requests[(requests["deployment"] == deployment) & (requests["tenant"] == tenant["name"])]
    mine = mine[~mine["warmup"]]
    # latency is counted from the scheduled time, so scheduled = done - latency (the analysis reads
    # only the columns it must; see perseus/report.py).
    scheduled = mine["scheduled_s"] if "scheduled_s" in mine else mine["done_s"] - mine["latency_ms"] / 1e3
    rows = []
    for i, (start, end, rate) in enumerate(
        ramp_levels(load["rate"], load["ramp_step"], load["ramp_hold_s"], duration_s)
    ):
        level = mine[(scheduled >= start) & (scheduled < end)]
        lat = level["latency_ms"].to_numpy(float)
        value = sla_latency(lat, level["ok"].to_numpy(bool), float(tenant["sla_percentile"]))
        met = bool(len(lat) > 0 and value <= float(tenant["sla_ms"]))
        rows.append([deployment, tenant["name"], i + 1, start, end, rate, len(lat), value, met])
    return pd.DataFrame(rows, columns=COLUMNS)


def breaking_points(levels: pd.DataFrame) -> pd.DataFrame:
    """Per (deployment, tenant): the last level that held, and the first that broke (rates in req/s)."""
    out = []
    for (dep, tenant), group in levels.groupby(["deployment", "tenant"], sort=False):
        broke = group[~group["sla_met"]]
        first_bad = broke.iloc[0] if len(broke) else None
        held = group[group["level"] < first_bad["level"]] if first_bad is not None else group
        out.append(
            {
                "deployment": dep,
                "tenant": tenant,
                "held_rps": float(held["rate_rps"].max()) if len(held) else math.nan,
                "breaking_rps": float(first_bad["rate_rps"]) if first_bad is not None else math.nan,
                "verdict": (
                    f"breaks at {first_bad['rate_rps']:.4g} req/s (level {int(first_bad['level'])}); "
                    f"held up to {held['rate_rps'].max():.4g} req/s"
                    if first_bad is not None and len(held)
                    else (
                        "breaks at the first level"
                        if first_bad is not None
                        else f"never broke: held up to {group['rate_rps'].max():.4g} req/s (ramp higher)"
                    )
                ),
            }
        )
    return pd.DataFrame(out)


def ramps(requests: pd.DataFrame, effective_scenario: dict, deployments: dict[str, dict]) -> pd.DataFrame:
    """Breaking points of every ramp tenant in every deployment it ran in (empty without ramps)."""
    tenants = {t["name"]: t for t in effective_scenario["tenants"] if t["load"].get("arrival") == "ramp"}
    if not tenants or requests.empty:
        return pd.DataFrame()
    frames = [
        level_table(requests, name, tenants[t], float(meta["duration_s"]))
        for name, meta in deployments.items()
        for t in meta["tenants"]
        if t in tenants
    ]
    levels = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    return breaking_points(levels) if len(levels) else pd.DataFrame()
