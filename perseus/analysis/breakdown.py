"""Where a traced request's latency went, at p50 and p99, and what changed between shared and solo.

Pure functions over spans.parquet rows (``perseus.analysis.spans``). A request's latency splits into
consecutive parts that add up to it exactly: the client's send lag (scheduled -> sent) and the seven
parts of its service time.

**At a percentile.** A percentile is one request's latency, and one request's parts are noise. So
each part's contribution at p50 or p99 is its mean over the requests *near* that percentile: those
whose latency rank lies within ``NEAR_FRACTION`` of all traced requests (at least ``MIN_NEAR``) on
either side of the percentile's rank. The parts' means then add up to those requests' mean latency.

**Interference** (shared vs solo, per tenant): the change of that near-percentile mean latency,
split into compute inflation (the same model's compute input/infer/output slower beside its
neighbours), queueing (waiting for an instance), and the client and network (send lag, network in
and out, and Triton's own request handling). The three add up to the change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perseus.analysis.spans import COMPONENT_NAMES

PERCENTILES = (50, 99)
# Near a percentile: 0.5% of the traced requests on each side of its rank (at 3,000 requests, the
# 15 above and below p99 - the tail's own requests rather than the bulk's), and never fewer than 3.
NEAR_FRACTION = 0.005
MIN_NEAR = 3
SLOWEST = 5
SEND_LAG = "send_lag_ms"
PARTS = (SEND_LAG, *COMPONENT_NAMES)
COMPUTE = ("compute_input_ms", "compute_infer_ms", "compute_output_ms")
QUEUE = ("queue_ms",)
CLIENT_NETWORK = (SEND_LAG, "net_in_ms", "handling_ms", "net_out_ms")
CAUSES = {"compute_ms": COMPUTE, "queue_ms": QUEUE, "client_network_ms": CLIENT_NETWORK}
BREAKDOWN_COLUMNS = ("deployment", "tenant", "percentile", "latency_ms", "traced", "near", "near_latency_ms", *PARTS)
ATTRIBUTION_COLUMNS = (
    "tenant",
    "shared",
    "solo",
    "percentile",
    "shared_ms",
    "solo_ms",
    "change_ms",
    *CAUSES,
)


def measured(spans: pd.DataFrame) -> pd.DataFrame:
    """Traced requests of the measurement (no warm-up, answered), with their send lag."""
    if spans is None or spans.empty:
        return pd.DataFrame(columns=[*spans.columns, SEND_LAG] if spans is not None else [SEND_LAG])
    rows = spans[~spans["warmup"].astype(bool) & spans["ok"].astype(bool)].copy()
    rows[SEND_LAG] = (rows["sent_s"] - rows["scheduled_s"]) * 1e3
    return rows


def near(latency: np.ndarray, q: float) -> np.ndarray:
    """Indices (into ``latency``) of the requests near its q-th percentile, by rank."""
    n = len(latency)
    order = np.argsort(latency, kind="stable")
    centre = round(q / 100.0 * (n - 1))
    half = max(MIN_NEAR, round(NEAR_FRACTION * n))
    return order[max(0, centre - half) : min(n, centre + half + 1)]


def breakdown(spans: pd.DataFrame) -> pd.DataFrame:
    """Per (deployment, tenant, percentile): the percentile of the traced requests' latency and each
    part's mean over the requests near it."""
    rows = []
    traced = measured(spans)
    if traced.empty:
        return pd.DataFrame(columns=BREAKDOWN_COLUMNS)
    for (deployment, tenant), group in traced.groupby(["deployment", "tenant"], sort=False, observed=True):
        latency = group["latency_ms"].to_numpy()
        for q in PERCENTILES:
            chosen = group.iloc[near(latency, q)]
            rows.append(
                {
                    "deployment": str(deployment),
                    "tenant": str(tenant),
                    "percentile": q,
                    "latency_ms": float(np.percentile(latency, q)),
                    "traced": len(group),
                    "near": len(chosen),
                    "near_latency_ms": float(chosen["latency_ms"].mean()),
                    **{part: float(chosen[part].mean()) for part in PARTS},
                }
            )
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)


def slowest(spans: pd.DataFrame, k: int = SLOWEST) -> pd.DataFrame:
    """Per (deployment, tenant), its ``k`` slowest traced requests, slowest first, with every part;
    the pairs in the order they first appear in ``spans``."""
    traced = measured(spans)
    if traced.empty:
        return traced
    keys = ["deployment", "tenant"]
    first = {key: i for i, key in enumerate(dict.fromkeys(zip(traced["deployment"], traced["tenant"], strict=True)))}
    traced["_pair"] = [first[key] for key in zip(traced["deployment"], traced["tenant"], strict=True)]
    top = traced.sort_values(["_pair", "latency_ms"], ascending=[True, False], kind="stable")
    return top.groupby(keys, sort=False, observed=True).head(k).drop(columns="_pair").reset_index(drop=True)


def attribution(table: pd.DataFrame, pairs: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """Shared vs solo per tenant and percentile: the change of the near-percentile mean latency and
    its split into compute, queueing, and client and network (which add up to it).

    ``table``: ``breakdown``'s rows; ``pairs``: tenant -> (shared deployment, solo deployment).
    """
    if table.empty:
        return pd.DataFrame(columns=ATTRIBUTION_COLUMNS)
    by = table.set_index(["deployment", "tenant", "percentile"])
    rows = []
    for tenant, (shared, solo) in pairs.items():
        for q in PERCENTILES:
            if (shared, tenant, q) not in by.index or (solo, tenant, q) not in by.index:
                continue
            a, b = by.loc[(shared, tenant, q)], by.loc[(solo, tenant, q)]
            rows.append(
                {
                    "tenant": tenant,
                    "shared": shared,
                    "solo": solo,
                    "percentile": q,
                    "shared_ms": float(a["near_latency_ms"]),
                    "solo_ms": float(b["near_latency_ms"]),
                    "change_ms": float(a["near_latency_ms"] - b["near_latency_ms"]),
                    **{cause: float(sum(a[p] - b[p] for p in parts)) for cause, parts in CAUSES.items()},
                }
            )
    return pd.DataFrame(rows, columns=ATTRIBUTION_COLUMNS)
