"""Sweep figures, computed once as data (pure functions over the committed points).

- ``points_table``: one row per point, factors then outcomes (sweep.csv).
- ``pareto_mask`` / ``frontiers``: Pareto-optimal points for (cost per 1M down, worst latency down)
  and (total throughput up, worst latency down) (pareto.csv).
- ``main_effects``: the mean outcome at each level of each factor.
- ``rank_agreement``: Spearman correlation of the tenants' rankings of the points, and each tenant's
  best configuration: "is the best configuration for model A also the best for B?".

Latency objectives count failed requests as infinitely late (``analysis.stats.sla_latency``): a point
that drops requests must not look fast. Such a point has an infinite objective and is on no frontier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from perseus.scenario import LOAD_LEVEL, parse_factor

COMPLETED = "completed"
COST = "cost_per_million_usd"
THROUGHPUT = "throughput_rps"
COST_FRONTIER = "cost-latency"
THROUGHPUT_FRONTIER = "throughput-latency"


def percentile_label(percentile: float) -> str:
    """``p99`` for the 99th percentile, ``p99.9`` for 99.9."""
    return f"p{percentile:g}"


def objective_name(percentile: float) -> str:
    return f"{percentile_label(percentile)}_ms"


def worst_name(percentile: float) -> str:
    return f"worst_{objective_name(percentile)}"


def tenant_column(tenant: str, column: str) -> str:
    return f"{tenant}.{column}"


def factor_label(key: str) -> str:
    """Short names for plots and text: ``tenants.*.server.instances`` -> ``instances``,
    ``tenants.vision.server.instances`` -> ``vision.instances``, ``load.level`` -> ``load level``."""
    parsed = parse_factor(key)
    if parsed is None:
        return key
    target, name = parsed
    if target is None:
        return "load level"
    return name if target == "*" else f"{target}.{name}"


def level_label(value: object) -> str:
    return str(value).lower() if isinstance(value, bool | np.bool_) else str(value)


def points_table(records: list[dict], factor_keys: list[str], tenants: list[str], percentile: float) -> pd.DataFrame:
    """One row per committed point (design order): its factors, then the point's and each tenant's outcomes.

    A record (``points/<name>.json``) holds ``point, index, settings, scale, status`` and, for a measured
    point, ``tenants`` (per tenant: throughput_rps, objective_ms, sla_latency_ms, sla_met, valid) and
    ``deployment`` (cost_per_million_usd).
    """
    objective, worst = objective_name(percentile), worst_name(percentile)
    per_tenant = (THROUGHPUT, objective, "sla_latency_ms", "sla_met", "valid")
    columns = ["point", "index", *factor_keys, "scale", "status", THROUGHPUT, worst, "slas_met", "valid", COST]
    columns += [tenant_column(t, c) for t in tenants for c in per_tenant]
    rows = []
    for rec in sorted(records, key=lambda r: r["index"]):
        measured = rec.get("tenants") or {}
        row = {"point": rec["point"], "index": rec["index"], "scale": rec.get("scale", 1.0), "status": rec["status"]}
        row.update({k: rec["settings"].get(k) for k in factor_keys})
        for t in tenants:
            m = measured.get(t, {})
            row[tenant_column(t, THROUGHPUT)] = m.get(THROUGHPUT, math.nan)
            row[tenant_column(t, objective)] = m.get("objective_ms", math.nan)
            row[tenant_column(t, "sla_latency_ms")] = m.get("sla_latency_ms", math.nan)
            row[tenant_column(t, "sla_met")] = bool(m.get("sla_met", False))
            row[tenant_column(t, "valid")] = bool(m.get("valid", False))
        ok = rec["status"] == COMPLETED and all(t in measured for t in tenants)
        row[THROUGHPUT] = sum(row[tenant_column(t, THROUGHPUT)] for t in tenants) if ok else math.nan
        row[worst] = max(row[tenant_column(t, objective)] for t in tenants) if ok else math.nan
        row["slas_met"] = ok and all(row[tenant_column(t, "sla_met")] for t in tenants)
        row["valid"] = ok and all(row[tenant_column(t, "valid")] for t in tenants)
        row[COST] = (rec.get("deployment") or {}).get(COST, math.nan) if ok else math.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def pareto_mask(x: np.ndarray, y: np.ndarray, *, maximize_x: bool = False) -> np.ndarray:
    """Which points are Pareto-optimal for (x down, or up with ``maximize_x``; y down).

    A point is dominated when another is at least as good on both and strictly better on one; equal
    points do not dominate each other, so both stay. Points with a non-finite coordinate are never
    optimal. O(n log n): sort by x (best first), then keep a point when its y beats every y seen at
    strictly better x.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    xs = -x if maximize_x else x
    mask = np.zeros(len(x), dtype=bool)
    eligible = np.flatnonzero(np.isfinite(xs) & np.isfinite(y))
    order = eligible[np.lexsort((y[eligible], xs[eligible]))]
    best_y = math.inf  # the lowest y at strictly better x
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and xs[order[j]] == xs[order[i]]:
            j += 1
        group = order[i:j]
        low = y[group[0]]  # groups are sorted by y: the first is the group's lowest
        if low < best_y:
            mask[group[y[group] == low]] = True
            best_y = low
        i = j
    return mask


def frontiers(table: pd.DataFrame, percentile: float) -> pd.DataFrame:
    """pareto.csv: the points on each frontier (``frontier`` column first), sorted along it."""
    worst = worst_name(percentile)
    done = table[table["status"] == COMPLETED]
    parts = []
    for name, x, maximize in ((COST_FRONTIER, COST, False), (THROUGHPUT_FRONTIER, THROUGHPUT, True)):
        mask = pareto_mask(done[x].to_numpy(), done[worst].to_numpy(), maximize_x=maximize)
        part = done[mask].sort_values([x, worst], ascending=[not maximize, True])
        parts.append(part.assign(frontier=name))
    out = pd.concat(parts, ignore_index=True) if parts else table.iloc[0:0].assign(frontier="")
    return out[["frontier", *table.columns]]


def main_effects(table: pd.DataFrame, factor_keys: list[str], outcomes: list[str]) -> pd.DataFrame:
    """Mean of each outcome at each level of each factor, over completed points with a finite value.

    Rows: factor, level (as written in the design), outcome, mean, points. Levels keep the design's order.
    """
    done = table[table["status"] == COMPLETED]
    rows = []
    for key in factor_keys:
        levels = list(dict.fromkeys(table[key].tolist()))
        for outcome in outcomes:
            values = pd.to_numeric(done[outcome], errors="coerce").astype(float)
            finite = done[np.isfinite(values.to_numpy())]
            groups = finite.groupby(key, sort=False)[outcome]
            means, counts = groups.mean(), groups.size()
            for level in levels:
                rows.append(
                    {
                        "factor": key,
                        "level": level_label(level),
                        "outcome": outcome,
                        "mean": float(means.get(level, math.nan)),
                        "points": int(counts.get(level, 0)),
                    }
                )
    return pd.DataFrame(rows, columns=["factor", "level", "outcome", "mean", "points"])


@dataclass(frozen=True)
class Agreement:
    """Do the tenants rank the configurations alike?"""

    matrix: pd.DataFrame  # tenant x tenant Spearman rho of the per-point latency rankings
    best: dict[str, str]  # tenant -> its best configuration (label); empty when no server factor varies
    same_best: bool | None  # None when there is nothing to compare (one tenant, or no configuration factor)
    stratified: bool  # ranks taken within each load level, so that load does not pass for agreement
    points: int


def configuration(settings: dict, factor_keys: list[str]) -> str:
    """The configuration a point runs: its non-load factor settings, as one label."""
    parts = [f"{factor_label(k)}={level_label(settings[k])}" for k in factor_keys if k != LOAD_LEVEL]
    return ", ".join(parts)


def rank_agreement(table: pd.DataFrame, tenants: list[str], percentile: float, factor_keys: list[str]) -> Agreement:
    """Spearman rank correlation between tenants of their latency rankings of the points.

    Each tenant ranks the completed points by its own latency objective (lower is better). With
    ``load.level`` as a factor, ranks are taken within each level (as percentiles), since a lighter
    load is faster for everyone and would otherwise pass for agreement. Spearman's rho is Pearson's
    correlation of the ranks (pandas ``rank`` then ``corr``). A tenant's best configuration is the one
    with the lowest mean rank over its points.
    """
    objective = objective_name(percentile)
    done = table[table["status"] == COMPLETED].reset_index(drop=True)
    latency = pd.DataFrame({t: done[tenant_column(t, objective)].astype(float) for t in tenants})
    stratified = LOAD_LEVEL in factor_keys
    by = latency.groupby(done[LOAD_LEVEL].map(level_label)) if stratified else latency
    ranks = by.rank(pct=True)
    matrix = ranks.corr(method="pearson") if len(done) > 1 else pd.DataFrame(np.nan, tenants, tenants)
    matrix = matrix.reindex(index=tenants, columns=tenants)
    config_keys = [k for k in factor_keys if k != LOAD_LEVEL]
    best: dict[str, str] = {}
    if config_keys and len(done):
        configs = pd.Series(
            [configuration(dict(zip(config_keys, row, strict=True)), config_keys) for row in done[config_keys].values],
            index=done.index,
        )
        order = list(dict.fromkeys(configs))  # design order breaks ties
        for t in tenants:
            mean_rank = ranks[t].groupby(configs, sort=False).mean().reindex(order)
            if mean_rank.notna().any():
                best[t] = str(mean_rank.idxmin())
    same = len(set(best.values())) == 1 if len(best) == len(tenants) > 1 else None
    return Agreement(matrix=matrix, best=best, same_best=same, stratified=stratified, points=len(done))


@dataclass(frozen=True)
class SweepAnalysis:
    table: pd.DataFrame  # sweep.csv
    pareto: pd.DataFrame  # pareto.csv
    effects: pd.DataFrame  # main_effects.csv
    agreement: Agreement
    factor_keys: list[str]
    tenants: list[str]
    percentile: float
    best: pd.Series | None = None  # the cheapest point where every tenant is VALID (cheapest_meeting_slas)


def analyse(records: list[dict], factor_keys: list[str], tenants: list[str], percentile: float) -> SweepAnalysis:
    """Every figure of a sweep, from its committed point records."""
    table = points_table(records, factor_keys, tenants, percentile)
    outcomes = [worst_name(percentile), THROUGHPUT, COST]
    return SweepAnalysis(
        table=table,
        pareto=frontiers(table, percentile),
        effects=main_effects(table, factor_keys, outcomes),
        agreement=rank_agreement(table, tenants, percentile, factor_keys),
        factor_keys=list(factor_keys),
        tenants=list(tenants),
        percentile=percentile,
        best=cheapest_meeting_slas(table, percentile),
    )


def cheapest_meeting_slas(table: pd.DataFrame, percentile: float) -> pd.Series | None:
    """The completed point with the lowest cost per 1M among those where every tenant is VALID
    (ties: the lower worst latency, then design order)."""
    ok = table[(table["status"] == COMPLETED) & table["valid"] & np.isfinite(table[COST].astype(float))]
    return None if ok.empty else ok.sort_values([COST, worst_name(percentile), "index"]).iloc[0]
