"""Capacity, co-location and interference figures, computed once as data (pure functions)."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import pandas as pd

from perseus.analysis import breakdown, cost
from perseus.analysis.bracket import Searched

# The kinds of deployment searched (perseus.kinds.DeploymentKind's values; pure analysis takes them as data).
SHARED_KIND, SOLO_KIND = "shared", "solo"


@dataclass(frozen=True)
class Capacities:
    table: pd.DataFrame  # deployment, kind, tenant, scale, upper, rate_rps, capacity_rps, converged, probes
    shared_scale: float | None
    # Sum over tenants of (shared capacity rate / solo capacity rate). Above 1, one shared server
    # carries more than the same tenants on dedicated servers in the same proportions (Perseus's
    # "above the linear baseline").
    colocation_gain: float | None
    shared_cost_per_million_usd: float
    solo_cost_per_million_usd: float
    savings: float
    verdict: str


def capacities(searches: dict[str, Searched], rates: dict[str, float], usd_per_hour: float | None) -> Capacities:
    """``searches``: deployment -> its search. ``rates``: tenant -> scenario mean rate (req/s)."""
    rows = []
    for name, searched in searches.items():
        search = searched.search
        for t in searched.tenants:
            k = search.capacity
            rows.append(
                {
                    "deployment": name,
                    "kind": str(searched.kind),
                    "tenant": t,
                    "scale": k if k is not None else math.nan,
                    "upper": search.upper if search.upper is not None else math.nan,
                    "rate_rps": rates[t],
                    "capacity_rps": rates[t] * k if k is not None else 0.0,
                    "converged": search.converged,
                    "probes": len(search.probes),
                }
            )
    table = pd.DataFrame(rows)
    shared = [s.search for s in searches.values() if s.kind == SHARED_KIND]
    k_shared = shared[0].capacity if shared else None
    solo_cap = {r["tenant"]: r["capacity_rps"] for r in rows if r["kind"] == SOLO_KIND}
    gain = None
    if k_shared and solo_cap and all(solo_cap.get(t, 0) > 0 for t in rates):
        gain = sum(k_shared * rates[t] / solo_cap[t] for t in rates)
    price = usd_per_hour if usd_per_hour is not None else math.nan
    shared_pm = solo_pm = saved = math.nan
    if k_shared:
        served = sum(k_shared * r for r in rates.values())
        shared_pm = cost.per_million(cost.cost_usd(price, 3600.0), round(served * 3600))
        if gain:
            # The same mix served by dedicated servers, each run at its own capacity: tenant t needs
            # k*r_t / cap_t of a server (a fluid approximation; whole servers cost more still).
            solo_pm = shared_pm * gain
            saved = cost.savings(shared_pm, solo_pm)
    # A search that never failed gives only a lower bound: searches stopped at the same ceiling would
    # make the "saving" 1 - 1/N by construction, so none is claimed until each is bracketed.
    open_ended = [name for name, s in searches.items() if s.search.upper is None]
    if open_ended:
        saved = math.nan
    return Capacities(table, k_shared, gain, shared_pm, solo_pm, saved, _verdict(k_shared, gain, saved, open_ended))


def _verdict(k_shared: float | None, gain: float | None, saved: float, open_ended: list[str] = ()) -> str:
    if open_ended and k_shared:
        return (
            f"shared capacity at least {k_shared:.3g}x the scenario's rates; no saving claimed: "
            f"{', '.join(open_ended)} never failed at the loads tried (run more probes to bracket them)"
        )
    if not k_shared:
        return "the shared server meets every SLA at no tested load: co-location does not fit"
    if gain is None:
        return f"shared capacity: {k_shared:.3g}x the scenario's rates (no solo baselines to compare)"
    side = "above" if gain > 1 else "below"
    return (
        f"shared capacity {k_shared:.3g}x the scenario's rates; co-location is {side} the linear baseline "
        f"(gain {gain:.2f}), {saved:.0%} {'saved' if saved >= 0 else 'extra'} per million requests at capacity"
    )


def interference(p99: dict[tuple[str, str], float], solo_p99: dict[str, float], tenants: list[str]) -> pd.DataFrame:
    """slowdown[A, B] = A's p99 when co-located with B / A's p99 alone (1 = no interference)."""
    matrix = pd.DataFrame(math.nan, index=tenants, columns=tenants, dtype=float)
    for a, b in itertools.permutations(tenants, 2):
        if (a, b) in p99 and solo_p99.get(a, 0) > 0:
            matrix.loc[a, b] = p99[(a, b)] / solo_p99[a]
    for a in tenants:
        matrix.loc[a, a] = 1.0
    matrix.index.name = "tenant"
    return matrix


INTERFERENCE_PARTS_COLUMNS = ("tenant", "with", *breakdown.ATTRIBUTION_COLUMNS[3:])


def interference_parts(table: pd.DataFrame, solo: dict[str, str], pairs: dict[tuple[str, str], str]) -> pd.DataFrame:
    """Each pair's slow-down of each of its tenants, split as ``breakdown.attribution`` splits shared vs
    solo: compute, queueing, client and network (traced runs; empty otherwise).

    ``table``: ``breakdown.breakdown`` over the traced deployments; ``solo``: tenant -> its solo
    deployment at the scenario's rates; ``pairs``: (a, b) -> the deployment running both.
    """
    rows = []
    for (a, b), deployment in pairs.items():
        for tenant, other in ((a, b), (b, a)):
            if tenant not in solo:
                continue
            split = breakdown.attribution(table, {tenant: (deployment, solo[tenant])})
            rows += [{"tenant": tenant, "with": other, **r} for r in split.to_dict("records")]
    frame = pd.DataFrame(rows, columns=[*INTERFERENCE_PARTS_COLUMNS, "shared", "solo"])
    return frame.loc[:, list(INTERFERENCE_PARTS_COLUMNS)]
