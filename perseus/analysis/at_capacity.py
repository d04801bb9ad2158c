"""Cost at capacity: what a million inferences cost when each server carries the most load that still
meets every SLA (the Perseus study's metric), from a `perseus capacity` table. Pure.

A capacity search brackets the largest passing scale k of the scenario's rates between ``scale``
(passed) and ``upper`` (failed), so every figure here comes with the interval that bracket implies:
a deployment's SLA-compliant throughput is in [sum k_pass r_t, sum k_fail r_t), and its cost per
million = $/h / (throughput x 3600) x 10^6 in the matching, reversed, interval. The figure quoted is the
interval's top (at the passing scale): a cost the measurements guarantee.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from perseus.analysis.cost import SECONDS_PER_HOUR, shares
from perseus.kinds import DeploymentKind

TENANT_COLUMNS = [
    "search",
    "kind",
    "tenant",
    "rate_rps",
    "capacity_rps",
    "capacity_high_rps",
    "share",
    "cost_per_million_usd",
    "cost_per_million_low_usd",
    "cost_per_million_high_usd",
]


@dataclass(frozen=True)
class AtCapacity:
    """Per (search, tenant) and for the whole mix: cost at capacity, shared against dedicated servers."""

    tenants: pd.DataFrame  # TENANT_COLUMNS: a tenant's share of its server's cost, per million of its inferences
    usd_per_hour: float
    shared_per_million_usd: float  # one server for the mix, run at its capacity
    shared_low_usd: float
    shared_high_usd: float
    dedicated_per_million_usd: float  # the same mix on dedicated servers, each at its own capacity
    dedicated_low_usd: float
    dedicated_high_usd: float
    savings: float  # 1 - shared / dedicated, measured at capacity; NaN without both sides bracketed
    savings_low: float
    savings_high: float
    # Searches that never found a failing scale: their capacity is only a lower bound, so no saving is
    # computed from them (two searches stopped at the same ceiling would give 1 - 1/N by construction).
    unbracketed: tuple[str, ...] = ()


def per_million(usd_per_hour: float, throughput_rps: float) -> float:
    """$/h / (inferences per hour) x 10^6; inf when nothing fits under the SLAs."""
    if not math.isfinite(throughput_rps):
        return 0.0 if throughput_rps > 0 else math.nan
    return usd_per_hour / (throughput_rps * SECONDS_PER_HOUR) * 1e6 if throughput_rps > 0 else math.inf


def cost_at_capacity(
    capacity: pd.DataFrame, usd_per_hour: float | None, compute_shares: dict[str, float] | None = None
) -> AtCapacity | None:
    """``capacity``: capacity.csv (deployment, kind, tenant, scale, upper, rate_rps). ``compute_shares``:
    each tenant's share of the shared server's execution time in this run (a fair split of the shared
    server's cost); without it, a tenant's share is its share of the requests at capacity."""
    if capacity is None or capacity.empty or usd_per_hour is None or not math.isfinite(usd_per_hour):
        return None
    rows, shared, dedicated, unbracketed = [], None, {}, []
    for search, group in capacity.groupby("deployment", sort=False):
        kind = str(group["kind"].iloc[0])
        k_lo = _scale(group["scale"].iloc[0])
        k_hi = _scale(group["upper"].iloc[0], missing=math.inf)
        if not math.isfinite(k_hi):
            unbracketed.append(str(search))
        rates = dict(zip(group["tenant"], group["rate_rps"].astype(float), strict=True))
        split = _split(rates, compute_shares if kind == DeploymentKind.SHARED else None)
        for tenant, rate in rates.items():
            rows.append(
                {
                    "search": search,
                    "kind": kind,
                    "tenant": tenant,
                    "rate_rps": rate,
                    "capacity_rps": k_lo * rate,
                    "capacity_high_rps": k_hi * rate,
                    "share": split[tenant],
                    "cost_per_million_usd": per_million(split[tenant] * usd_per_hour, k_lo * rate),
                    "cost_per_million_low_usd": per_million(split[tenant] * usd_per_hour, k_hi * rate),
                    "cost_per_million_high_usd": per_million(split[tenant] * usd_per_hour, k_lo * rate),
                }
            )
        if kind == DeploymentKind.SHARED:
            shared = (k_lo, k_hi, rates)
        elif kind == DeploymentKind.SOLO:
            (tenant,) = rates
            dedicated[tenant] = (k_lo * rates[tenant], k_hi * rates[tenant])
    return _fleet(pd.DataFrame(rows, columns=TENANT_COLUMNS), usd_per_hour, shared, dedicated, tuple(unbracketed))


def _fleet(table: pd.DataFrame, price: float, shared, dedicated: dict, unbracketed: tuple[str, ...]) -> AtCapacity:
    nan = math.nan
    s_pm = s_lo = s_hi = d_pm = d_lo = d_hi = saved = saved_lo = saved_hi = nan
    if shared is not None:
        k_lo, k_hi, rates = shared
        total = sum(rates.values())
        # Quoted at the largest scale that passed: capacity is at least that, so the cost is at most this.
        s_pm, s_lo = per_million(price, k_lo * total), per_million(price, k_hi * total)
        s_hi = s_pm
        if rates and all(t in dedicated for t in rates) and not unbracketed:
            # The same mix on dedicated servers, tenant t needing r_t / cap_t of a server (a fluid
            # approximation: whole servers cost more still): $/h x sum(r_t / cap_t) per sum(r_t).
            d_pm = _dedicated(price, rates, {t: c[0] for t, c in dedicated.items()})
            d_lo = _dedicated(price, rates, {t: c[1] for t, c in dedicated.items()})
            d_hi = d_pm
            saved = 1 - s_pm / d_pm if d_pm > 0 else nan
            # Least saving: shared at its lowest capacity against dedicated at their highest; most: the reverse.
            saved_lo = 1 - s_pm / d_lo if d_lo > 0 else nan
            saved_hi = 1 - s_lo / d_pm if d_pm > 0 else nan
    return AtCapacity(table, price, s_pm, s_lo, s_hi, d_pm, d_lo, d_hi, saved, saved_lo, saved_hi, unbracketed)


def _dedicated(price: float, rates: dict[str, float], caps: dict[str, float]) -> float:
    if any(caps[t] <= 0 for t in rates):
        return math.inf
    servers = sum(r / caps[t] for t, r in rates.items())
    return price * servers / (sum(rates.values()) * SECONDS_PER_HOUR) * 1e6


def _scale(value, missing: float = 0.0) -> float:
    v = float(value)
    return v if math.isfinite(v) else missing


def _split(rates: dict[str, float], compute: dict[str, float] | None) -> dict[str, float]:
    names = list(rates)
    if compute and all(t in compute and math.isfinite(compute[t]) for t in names):
        values = shares([compute[t] for t in names])
    else:
        values = shares([rates[t] for t in names])
    return dict(zip(names, values, strict=True))
