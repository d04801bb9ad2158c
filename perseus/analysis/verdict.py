"""The headline: can the tenants share a server at the offered load, and what does sharing save at capacity?

Computed once, as data (pure). At the offered load the run measures provisioning: whether one server
carries every tenant within its SLA, and how busy each server is. It never presents the server count
(1 against N, a saving of 1 - 1/N by construction) as a measured saving. A saving is measured only at
capacity, where each server carries the most load that meets every SLA (``at_capacity``).

A verdict stands only on conclusive measurements: when any (deployment, tenant) has too little
evidence (too short, too few requests, or an SLA that holds without the requests to show it at the
required confidence), the verdict is "inconclusive" with the reason and what would settle it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from perseus.analysis.at_capacity import AtCapacity
from perseus.analysis.roles import first_of_kind
from perseus.analysis.validity import STOPPED
from perseus.kinds import DeploymentKind


@dataclass(frozen=True)
class Comparison:
    """Shared server vs one server per tenant, for the whole tenant mix."""

    verdict: str
    conclusive: bool
    shared_slas_met: bool
    solo_slas_met: bool
    servers_solo: int
    shared_busy: float  # the shared server's busy fraction (NaN: not measured)
    solo_busy_low: float  # the least and most busy dedicated server
    solo_busy_high: float
    # Measured at the offered load: what this run's servers cost per million requests that met their SLA.
    shared_cost_per_million_good_usd: float
    solo_cost_per_million_good_usd: float
    at_capacity: AtCapacity | None = None
    reasons: tuple[str, ...] = ()  # why inconclusive


def inconclusive_reasons(rows: pd.DataFrame, names: list[str]) -> list[str]:
    """One reason per (deployment, tenant) whose measurement cannot carry a verdict."""
    weak = rows[rows["deployment"].isin(names) & ~rows["evidence_ok"].astype(bool)]
    return [f"{r.deployment}/{r.tenant}: {r.verdict}" for r in weak.itertuples()]


def compare(
    deployments: pd.DataFrame, meta: dict[str, dict], rows: pd.DataFrame, at_capacity: AtCapacity | None = None
) -> Comparison | None:
    """The shared deployment against every tenant's solo baseline, or None without both."""
    tenants = list(dict.fromkeys(rows["tenant"]))
    shared_name = first_of_kind(meta, DeploymentKind.SHARED)
    solo_names = [first_of_kind(meta, DeploymentKind.SOLO, t) for t in tenants]
    if shared_name is None or None in solo_names or len(tenants) < 2:
        return None
    by_name = deployments.set_index("deployment")
    shared, solos = by_name.loc[shared_name], by_name.loc[solo_names]
    busy = [float(b) for b in solos["busy_fraction"]]
    reasons = inconclusive_reasons(rows, [shared_name, *solo_names])
    shared_ok, solo_ok = bool(shared["slas_met"]), bool(solos["slas_met"].all())
    fields = {
        "shared_slas_met": shared_ok,
        "solo_slas_met": solo_ok,
        "servers_solo": len(solo_names),
        "shared_busy": float(shared["busy_fraction"]),
        "solo_busy_low": min(busy),
        "solo_busy_high": max(busy),
        "shared_cost_per_million_good_usd": float(shared["cost_per_million_good_usd"]),
        "solo_cost_per_million_good_usd": _fleet_per_good(solos),
        "at_capacity": at_capacity,
    }
    if reasons:
        text = f"inconclusive: {len(reasons)} measurement(s) cannot carry a verdict; {reasons[0]}"
        return Comparison(verdict=text, conclusive=False, reasons=tuple(reasons), **fields)
    text = _verdict(shared_ok, solo_ok, len(tenants), fields, at_capacity)
    return Comparison(verdict=text, conclusive=True, **fields)


def why_no_comparison(meta: dict[str, dict], tenants: list[str], not_started: Sequence[str] = ()) -> str:
    """Why ``compare`` found nothing to compare, naming each deployment that stopped or never started."""
    if len(tenants) < 2:
        return "no shared-vs-dedicated comparison: a single tenant has nothing to share"
    parts = [
        f"{name} {STOPPED.get(str(m.get('status')), str(m.get('status')))}"
        for name, m in meta.items()
        if str(m.get("status", "completed")) != "completed"
    ]
    parts += [f"{name} never started" for name in not_started]
    if not parts:
        if first_of_kind(meta, DeploymentKind.SHARED) is None:
            parts.append("this run has no shared deployment")
        if any(first_of_kind(meta, DeploymentKind.SOLO, t) is None for t in tenants):
            parts.append("baselines are off (no solo-<tenant> deployment for every tenant)")
    return "no shared-vs-dedicated comparison: " + "; ".join(parts)


def _fleet_per_good(solos: pd.DataFrame) -> float:
    good = float(solos["good"].sum())
    return float(solos["cost_usd"].sum()) / good * 1e6 if good > 0 else math.nan


def busy_text(value: float) -> str:
    return f"{value:.0%} busy" if math.isfinite(value) else "busy fraction not measured"


def _busy_range(low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "busy fraction not measured"
    return f"{low:.0%} busy" if round(low, 2) == round(high, 2) else f"{low:.0%}–{high:.0%} busy"


def _verdict(shared_ok: bool, solo_ok: bool, n: int, f: dict, at_capacity: AtCapacity | None) -> str:
    """SLAs first: a server that misses an SLA is never called the better choice."""
    shared_busy, solo_busy = busy_text(f["shared_busy"]), _busy_range(f["solo_busy_low"], f["solo_busy_high"])
    if shared_ok:
        head = f"share: one server carries all {n} tenants within their SLAs at {shared_busy}"
        if solo_ok:
            head += f"; dedicated servers would be {solo_busy}"
        else:
            head += "; dedicated servers miss at least one SLA"
        return head + capacity_clause(at_capacity)
    if solo_ok:
        return (
            f"do not share: the shared server misses at least one SLA that dedicated servers ({solo_busy}) meet"
            + capacity_clause(at_capacity)
        )
    return "neither meets every SLA: the load is too high for this instance, shared or not"


def capacity_clause(at_capacity: AtCapacity | None) -> str:
    """What sharing saves, where it is measured: at capacity. Otherwise, say where it would be."""
    if at_capacity is not None and at_capacity.unbracketed:
        return (
            f". At capacity no saving is claimed: {', '.join(at_capacity.unbracketed)} never failed at the "
            "loads tried, so their capacity is only a lower bound (rerun `perseus capacity` with more probes)"
        )
    if at_capacity is None or not math.isfinite(at_capacity.savings):
        return (
            ". At this load that is a count of servers, not a saving: what sharing saves is measured at "
            "capacity (`perseus capacity`, then `perseus report --capacity DIR`)"
        )
    a = at_capacity
    side = "saves" if a.savings >= 0 else "costs"
    interval = f" (bracket {a.savings_low:.0%} to {a.savings_high:.0%})" if math.isfinite(a.savings_low) else ""
    return (
        f". At capacity, sharing {side} {abs(a.savings):.0%} per million requests{interval}: "
        f"${a.shared_per_million_usd:.3g} shared against ${a.dedicated_per_million_usd:.3g} on dedicated servers"
    )
